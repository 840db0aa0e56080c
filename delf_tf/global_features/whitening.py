"""Whitening of global descriptors learned after training, saved for the extractor's PCA path.

Both kinds produce a mean m [D] and a projection P [D', D] (rows = output dimensions, most
significant first), applied as L2(P[:dim] (x - m)) — exactly the extractor's
`DelfPcaParameters` post-processing, so they are written as DatumProto files it reads:

  PCA whitening: P = eigenvectors of the descriptor covariance (rows); the eigenvalues are
    written as the variances file, so the extractor's use_whitening divides by sqrt(variance).
  Learned whitening (Radenović et al., TPAMI 2018), from matching pairs (q_i, p_i):
    m = mean of the queries; S = cov(q_i - p_i) = L L^T (Cholesky); W = L^-1;
    the eigenvectors E of the scatter of W (x - m) over all descriptors rotate it:
    P = E^T W (already whitening: no variances file).
"""

import dataclasses
import os

import numpy as np

from delf_tf.io import datum_io
from delf_tf.protos import delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "LearnWhiteningFromDatabase",
    # delf_tf's own API.
    "Whitening", "learn_pca_whitening", "learn_whitening", "whitenlearn", "pcawhitenlearn",
    "whitenapply", "save_whitening",
]


@dataclasses.dataclass
class Whitening:
    """mean float32 [D]; projection float32 [D', D]; variances float32 [D'] or None."""

    mean: np.ndarray
    projection: np.ndarray
    variances: np.ndarray | None = None

    def apply(self, descriptors: np.ndarray, dim: int | None = None) -> np.ndarray:
        """float [N, D] -> float32 [N, dim] whitened (÷ sqrt(variances) for PCA) and L2."""
        dim = dim or self.projection.shape[0]
        out = (np.asarray(descriptors, np.float64) - self.mean) @ self.projection[:dim].T
        if self.variances is not None:
            out = out / np.sqrt(self.variances[:dim])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def _sorted_eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric matrix -> (eigenvalues descending [D], eigenvectors as columns [D, D])."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def learn_pca_whitening(descriptors: np.ndarray) -> Whitening:
    """descriptors float [N, D] -> PCA whitening (eigenvalues kept as variances)."""
    x = np.asarray(descriptors, np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    values, vectors = _sorted_eigh(centred.T @ centred / len(x))
    # Directions without variance cannot be whitened; keep them finite instead of inf.
    values = np.maximum(values, values.max() * 1e-12 if values.max() > 0 else 1e-12)
    return Whitening(mean.astype(np.float32), vectors.T.astype(np.float32),
                     values.astype(np.float32))


def learn_whitening(descriptors: np.ndarray, qidxs, pidxs) -> Whitening:
    """Radenović et al.'s learned whitening from matching pairs (descriptors[q], descriptors[p]).

    descriptors float [N, D]; qidxs, pidxs int [M] row indices of matching pairs (M >= D for a
    full-rank difference covariance; otherwise it is regularised by a small ridge).
    """
    x = np.asarray(descriptors, np.float64)
    qidxs, pidxs = np.asarray(qidxs), np.asarray(pidxs)
    mean = x[qidxs].mean(axis=0)
    differences = x[qidxs] - x[pidxs]
    covariance = differences.T @ differences / len(differences)
    # A ridge keeps the Cholesky defined when pairs do not span every dimension.
    ridge = 1e-6 * max(np.trace(covariance) / len(covariance), 1e-12)
    lower = np.linalg.cholesky(covariance + ridge * np.eye(len(covariance)))
    whitener = np.linalg.inv(lower)
    whitened = (x - mean) @ whitener.T
    _, vectors = _sorted_eigh(whitened.T @ whitened)
    return Whitening(mean.astype(np.float32), (vectors.T @ whitener).astype(np.float32))


# The original's functions (delf/python/whiten.py), descriptors as columns X [D, N].


def whitenlearn(X, qidxs, pidxs):
    """X [D, N], matching pairs (qidxs, pidxs) -> (m [D, 1], P [D, D]) learned whitening."""
    learned = learn_whitening(np.asarray(X).T, qidxs, pidxs)
    return learned.mean[:, None], learned.projection


def pcawhitenlearn(X):
    """X [D, N] -> (m [D, 1], P [D, D]) with the 1/sqrt(eigenvalue) scaling folded into P."""
    pca = learn_pca_whitening(np.asarray(X).T)
    return pca.mean[:, None], pca.projection / np.sqrt(pca.variances)[:, None]


def whitenapply(X, m, P, dimensions=None):
    """X [D, N] -> P[:dimensions] (X - m), columns L2-normalised: [dimensions, N]."""
    out = np.dot(np.asarray(P)[:dimensions or len(P)], np.asarray(X) - np.asarray(m))
    return out / (np.linalg.norm(out, ord=2, axis=0, keepdims=True) + 1e-6)


def save_whitening(whitening: Whitening, output_dir: str, prefix: str = "whitening"
                   ) -> delf_config_pb2.DelfPcaParameters:
    """Writes <prefix>_mean.datum, <prefix>_projection.datum (and <prefix>_variances.datum for
    PCA whitening) into output_dir; returns DelfPcaParameters naming them (full dimension)."""
    os.makedirs(output_dir, exist_ok=True)
    mean_path = os.path.join(output_dir, f"{prefix}_mean.datum")
    projection_path = os.path.join(output_dir, f"{prefix}_projection.datum")
    datum_io.WriteToFile(whitening.mean, mean_path)
    datum_io.WriteToFile(whitening.projection, projection_path)
    parameters = delf_config_pb2.DelfPcaParameters(
            mean_path=mean_path, projection_matrix_path=projection_path,
            pca_dim=int(whitening.projection.shape[0]),
            use_whitening=whitening.variances is not None)
    if whitening.variances is not None:
        variances_path = os.path.join(output_dir, f"{prefix}_variances.datum")
        datum_io.WriteToFile(whitening.variances, variances_path)
        parameters.pca_variances_path = variances_path
    return parameters


def LearnWhiteningFromDatabase(model, database_path: str, split: str = "train",
                               image_size: int = 1024, kind: str = "learned",
                               max_pairs: int | None = None, seed: int = 0) -> Whitening:
    """Whitening of `model`'s descriptors learned on an SfM database split.

    kind "learned": Radenović et al.'s whitening from the split's query/positive pairs;
    "pca": PCA whitening of the descriptors of the same images. Images are looked up in
    <database dir>/ims and shrunk to `image_size`.
    """
    # Imported here: the maths above needs no TensorFlow.
    from delf_tf.global_features import extraction, sfm

    if kind not in ("learned", "pca"):
        raise ValueError(f"whitening kind must be 'learned' or 'pca', got {kind!r}")
    database = sfm.ReadSfmDatabase(database_path)
    if split not in database:
        raise ValueError(f"{database_path} has no {split!r} split (has {sorted(database)})")
    data = database[split]
    chosen = np.random.default_rng(seed).permutation(len(data.qidxs))[:max_pairs]
    images = np.unique(np.concatenate([data.qidxs[chosen], data.pidxs[chosen]]))
    position = {int(image): k for k, image in enumerate(images)}
    paths = data.image_paths(os.path.join(os.path.dirname(database_path), "ims"))
    bbxs = None if data.bbxs is None else [data.bbxs[i] for i in images]
    vectors = extraction.extract_vectors(model, [paths[i] for i in images], image_size, bbxs)
    if kind == "pca":
        return learn_pca_whitening(vectors)
    return learn_whitening(vectors, [position[int(i)] for i in data.qidxs[chosen]],
                           [position[int(i)] for i in data.pidxs[chosen]])

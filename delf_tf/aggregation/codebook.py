"""Visual-word codebooks: k-means over local descriptors, saved as DatumProto.

A codebook is a float32 array [K, D] (one codeword per row). It is written
with `datum_io.WriteToFile` (conventionally `<dir>/codebook.datum`). For
users of the original, `ReadCodebook` also reads a TensorFlow checkpoint
holding a `clusters` variable (the original's k-means estimator output).

Training uses scikit-learn's k-means (exact Lloyd iterations for small
problems, mini-batch k-means for large ones such as 65536 words), faiss's
(`algorithm="faiss"`, the `faiss-cpu` package), or delf_tf's own Lloyd
iterations as faiss runs them (`"converge"`, `"approximate"`), whose
nearest-word search is `functional.WordSearch` (TensorFlow's matrix product, through
the exact bfloat16 screen of `word_screen` on CPUs with native bfloat16): fast enough
for 65536 words, as HOW's codebooks are trained.
"""

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from delf_tf import blas, checks
from delf_tf.aggregation import functional
from delf_tf.io import datum_io, feature_io, revisited
from delf_tf.io.files import require_files
from delf_tf.optional import import_optional
from delf_tf.progress import Progress

__all__ = [
    # The original's names (the compatibility surface).
    "TrainCodebook", "SampleDescriptors", "WriteCodebook", "ReadCodebook",
    "ClusterDatasetFeatures",
    # delf_tf's own API.
    "CODEBOOK_FILENAME", "MAX_POINTS_PER_WORD", "NUM_CANDIDATE_WORDS", "CONVERGENCE_TOLERANCE",
    "ClusteringParams", "cluster_dataset_features",
]

logger = logging.getLogger(__name__)

CODEBOOK_FILENAME = "codebook.datum"
# faiss's k-means (and so the asmk package) clusters at most this many descriptors per
# word, drawn at random; the approximate k-means does the same.
MAX_POINTS_PER_WORD = 256
# Approximate k-means: words each descriptor is compared with after the first iteration
# (the nearest words of its previous word).
NUM_CANDIDATE_WORDS = 32
# "converge" / "approximate" k-means stop after the first iteration that lowers the mean
# squared distance by less than this fraction.
CONVERGENCE_TOLERANCE = 0.01
# The original's k-means estimator stored its centers under this variable name.
# Checkpoint names of a codebook: a TF1-saver variable `clusters` (the original's k-means
# estimator) or the object-graph key of tf.train.Checkpoint(codebook=variable).
_CHECKPOINT_NAMES = ("clusters", "clusters/.ATTRIBUTES/VARIABLE_VALUE", "codebook",
                     "codebook/.ATTRIBUTES/VARIABLE_VALUE")
# Above this many (features x clusters) distance evaluations per iteration,
# exact Lloyd iterations get too slow on a CPU and mini-batches are used.
_MAX_EXACT_KMEANS_WORK = 2e9
# k-means++ seeding costs O(K^2 log K) distance rows; above this many clusters
# (e.g. the 65536-word codebooks) random seeding is used instead.
_MAX_KMEANS_PLUS_PLUS_CLUSTERS = 4096


def TrainCodebook(
    descriptors: np.ndarray,
    num_clusters: int,
    num_iterations: int = 50,
    seed: int = 0,
    algorithm: str = "auto",
    verbose: bool = False,
    tolerance: float = CONVERGENCE_TOLERANCE,
    num_neighbors: int = NUM_CANDIDATE_WORDS,
) -> np.ndarray:
    """Clusters descriptors into `num_clusters` codewords with k-means.

    Args:
      descriptors: float [N, D], N >= num_clusters.
      num_clusters: codebook size K.
      num_iterations: maximum Lloyd iterations ("exact") or passes over the
        data ("minibatch").
      seed: seeds the initialisation (k-means++ up to 4096 clusters, random
        codewords above) and mini-batch sampling.
      algorithm: "exact" (Lloyd), "minibatch", "faiss" (Lloyd iterations by
        faiss, random initial codewords, at most 256 descriptors per
        codeword sampled), "converge" (the same Lloyd iterations, stopped
        once converged, see `tolerance`), "approximate" (as "converge", every
        assignment after the first among `num_neighbors` + 1 words only), or
        "auto" (exact unless N x K is large).
      verbose: print scikit-learn's or faiss's progress ("converge" and
        "approximate" log one line per iteration).
      tolerance: "converge" / "approximate" stop after the first iteration
        that lowers the mean squared distance by less than this fraction.
      num_neighbors: "approximate" compares each descriptor with the word it
        had and that word's `num_neighbors` nearest words.

    Returns:
      float32 [K, D] codebook.
    """
    descriptors = np.asarray(descriptors, dtype=np.float32)
    _check_training_input(descriptors, num_clusters)
    if algorithm == "faiss":
        return _train_faiss(descriptors, num_clusters, num_iterations, seed, verbose)
    if algorithm in ("converge", "approximate"):
        return _train_lloyd(descriptors, num_clusters, num_iterations, seed, tolerance,
                            num_neighbors if algorithm == "approximate" else None)
    if algorithm == "auto":
        exact = len(descriptors) * num_clusters <= _MAX_EXACT_KMEANS_WORK
        algorithm = "exact" if exact else "minibatch"
    kmeans = _sklearn_kmeans(algorithm, num_clusters, num_iterations, seed, verbose)
    # k-means++ seeding makes many small BLAS calls, which multi-threaded BLAS
    # turns into a crawl on a busy machine (11x slower measured here); the Lloyd steps are
    # parallelised by scikit-learn's own OpenMP threads either way.
    with blas.single_threaded():
        kmeans.fit(descriptors)
    return kmeans.cluster_centers_.astype(np.float32)


def _check_training_input(descriptors: np.ndarray, num_clusters: int) -> None:
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be [N, D], got shape {descriptors.shape}")
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be positive, got {num_clusters}")
    if len(descriptors) < num_clusters:
        raise ValueError(
            f"k-means needs at least as many descriptors as clusters: "
            f"{len(descriptors)} descriptors for {num_clusters} clusters")


def _sklearn_kmeans(algorithm: str, num_clusters: int, num_iterations: int, seed: int,
                    verbose: bool):
    """An unfitted scikit-learn KMeans ("exact") or MiniBatchKMeans ("minibatch")."""
    # scikit-learn is needed only to train, so reading codebooks and
    # aggregating never import it.
    from delf_tf.optional import import_optional

    cluster = import_optional("sklearn.cluster", "aggregation")
    init = "k-means++" if num_clusters <= _MAX_KMEANS_PLUS_PLUS_CLUSTERS else "random"
    if algorithm == "exact":
        kmeans = cluster.KMeans(
            n_clusters=num_clusters, init=init, max_iter=num_iterations, n_init=1,
            random_state=seed, verbose=int(verbose))
    elif algorithm == "minibatch":
        kmeans = cluster.MiniBatchKMeans(
            n_clusters=num_clusters, init=init, max_iter=num_iterations, n_init=1,
            batch_size=max(4096, 4 * num_clusters), random_state=seed,
            verbose=int(verbose))
    else:
        raise ValueError(
            f"algorithm must be 'auto', 'exact', 'minibatch', 'faiss', 'converge' or "
            f"'approximate', got {algorithm!r}")
    return kmeans


def _train_faiss(descriptors: np.ndarray, num_clusters: int, num_iterations: int, seed: int,
                 verbose: bool) -> np.ndarray:
    faiss = import_optional("faiss", "asmk")
    kmeans = faiss.Kmeans(descriptors.shape[1], num_clusters, niter=num_iterations, seed=seed,
                          verbose=verbose)
    kmeans.train(np.ascontiguousarray(descriptors))
    return np.asarray(kmeans.centroids, dtype=np.float32).reshape(num_clusters, -1)


def SampleDescriptors(
    feature_paths: Sequence[str],
    max_num_descriptors: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Reads local descriptors from DelfFeatures files and samples them.

    Args:
      feature_paths: feature files (`.delf` / `.delg_local`), float descriptors.
      max_num_descriptors: keep at most this many, drawn uniformly without
        replacement (None or <= 0: keep all).
      seed: seeds the sampling.
      progress: called as progress(files_done, num_files).

    Returns:
      float32 [M, D].
    """
    chunks = []
    dim = None
    for i, path in enumerate(feature_paths):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such feature file: {path}")
        descriptors = feature_io.read_features(path).descriptors
        if len(descriptors):
            if descriptors.dtype == np.uint8:
                raise ValueError(
                    f"{path} holds binarized (uint8) descriptors; a codebook needs float ones")
            if dim is None:
                dim = descriptors.shape[1]
            elif descriptors.shape[1] != dim:
                raise ValueError(
                    f"{path} has {descriptors.shape[1]}-D descriptors, earlier files {dim}-D")
            chunks.append(descriptors.astype(np.float32))
        if progress is not None:
            progress(i + 1, len(feature_paths))
    if not chunks:
        raise ValueError(f"No descriptors found in {len(feature_paths)} feature files")
    descriptors = np.concatenate(chunks)
    if max_num_descriptors and 0 < max_num_descriptors < len(descriptors):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(descriptors), max_num_descriptors, replace=False))
        descriptors = descriptors[keep]
    return descriptors


def WriteCodebook(codebook: np.ndarray, path: str) -> None:
    """Writes a float [K, D] codebook as a DatumProto file (atomically)."""
    codebook = np.asarray(codebook, dtype=np.float32)
    if codebook.ndim != 2:
        raise ValueError(f"codebook must be [K, D], got shape {codebook.shape}")
    datum_io.WriteToFile(codebook, path)


def ReadCodebook(path: str) -> np.ndarray:
    """Reads a codebook float32 [K, D] from a DatumProto file, or from a
    TensorFlow checkpoint (prefix or directory) holding it as a variable named
    `clusters` (TF1 saver) or under the key `codebook` (tf.train.Checkpoint(codebook=v))."""
    path = os.fspath(path)
    if not path:
        raise ValueError("codebook_path is empty")
    if os.path.isfile(path):
        codebook = datum_io.ReadFromFile(path)
    elif os.path.isdir(path) or os.path.isfile(path + ".index"):
        codebook = _read_checkpoint_codebook(path)
    else:
        raise FileNotFoundError(f"No such codebook file: {path}")
    if codebook.ndim != 2:
        raise ValueError(f"Codebook {path} must be [K, D], got shape {codebook.shape}")
    return codebook.astype(np.float32)


def _read_checkpoint_codebook(path: str) -> np.ndarray:
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(path)
    except (ValueError, tf.errors.OpError) as e:
        raise ValueError(
            f"Codebook {path} is neither a DatumProto file nor a checkpoint: {e}") from e
    names = reader.get_variable_to_shape_map()
    for name in _CHECKPOINT_NAMES:
        if name in names:
            return np.asarray(reader.get_tensor(name))
    raise ValueError(f"Checkpoint {path} has neither a 'clusters' variable nor a 'codebook' "
                     f"entry (has: {sorted(names)})")


@dataclasses.dataclass(frozen=True)
class ClusteringParams:
    """How ClusterDatasetFeatures trains its codebook (the flags of
    tools/cluster_delf_features.py).

    Attributes:
      num_clusters: Number of clusters (codebook size).
      num_iterations: Maximum k-means iterations (passes over the data for mini-batches).
      max_num_features: If positive, k-means runs on this many descriptors sampled uniformly
        at random.
      seed: Seed of the sampling and of the k-means initialisation.
    """
    num_clusters: int = 1024
    num_iterations: int = 50
    max_num_features: int | None = 0
    seed: int = 0


def ClusterDatasetFeatures(dataset_file_path: str, features_dir: str, output_cluster_dir: str,
                           num_clusters: int, *, feature_extension: str = ".delf",
                           **params) -> str:
    """cluster_dataset_features with ClusteringParams(num_clusters, **params) (its other
    fields by keyword)."""
    return cluster_dataset_features(dataset_file_path, features_dir, output_cluster_dir,
                                    ClusteringParams(num_clusters, **params), feature_extension)


def cluster_dataset_features(dataset_file_path: str, features_dir: str,
                             output_cluster_dir: str, params: ClusteringParams,
                             feature_extension: str = ".delf") -> str:
    """Trains a codebook on the index images' features of a Revisited-format
    dataset (as the original's cluster_delf_features) and writes it.

    Reads `<features_dir>/<name><feature_extension>` for every image of the
    dataset's index list, samples at most `params.max_num_features` descriptors (0 or None:
    all), runs k-means, and writes `<output_cluster_dir>/codebook.datum`.

    Returns:
      The codebook file path.
    """
    num_clusters, num_iterations = params.num_clusters, params.num_iterations
    max_num_features, seed = params.max_num_features, params.seed
    checks.positive("num_clusters", num_clusters)
    checks.positive("num_iterations", num_iterations)
    if max_num_features is not None:
        checks.non_negative("max_num_features", max_num_features)  # 0: all
    _, index_list, _ = revisited.ReadDatasetFile(dataset_file_path)
    paths = [os.path.join(features_dir, name + feature_extension) for name in index_list]
    require_files(paths, "feature files are")

    reading = Progress(len(paths), "Read features of", unit="images", every=100,
                       log=functools.partial(print, flush=True))
    descriptors = SampleDescriptors(paths, max_num_features, seed,
                                    progress=lambda done, total: reading.step())
    print(f"Clustering {len(descriptors)} descriptors of dimension {descriptors.shape[1]} "
          f"into {num_clusters} clusters", flush=True)
    start = time.perf_counter()
    codebook = TrainCodebook(descriptors, num_clusters, num_iterations, seed)
    print(f"k-means took {time.perf_counter() - start:.1f} s", flush=True)
    os.makedirs(output_cluster_dir, exist_ok=True)
    output_path = os.path.join(output_cluster_dir, CODEBOOK_FILENAME)
    WriteCodebook(codebook, output_path)
    print(f"Wrote codebook {codebook.shape} to {output_path}", flush=True)
    return output_path


def _train_lloyd(descriptors: np.ndarray, num_clusters: int, num_iterations: int, seed: int,
                 tolerance: float, num_neighbors: int | None) -> np.ndarray:
    """Lloyd iterations as faiss runs them, stopped once converged; optionally approximate.

    As faiss's k-means (and so the asmk package): at most MAX_POINTS_PER_WORD descriptors
    per word (drawn at random), random descriptors as the initial words, exact nearest-word
    assignment (`functional.nearest_words`), empty words re-seeded by splitting a large one.
    Stops after `num_iterations` assignment steps, or after the first that lowers the mean squared
    distance by less than the fraction `tolerance`. With `num_neighbors`, each assignment
    after the first compares a descriptor only with the word it had and that word's
    `num_neighbors` nearest words: O(N x num_neighbors) distances instead of O(N x K).
    """
    rng = np.random.default_rng(seed)
    x = descriptors
    if len(x) > MAX_POINTS_PER_WORD * num_clusters:
        x = x[np.sort(rng.choice(len(x), MAX_POINTS_PER_WORD * num_clusters, replace=False))]
    x = np.ascontiguousarray(x, dtype=np.float32)
    centroids = x[rng.choice(len(x), num_clusters, replace=False)].copy()
    progress = Progress(num_iterations, "k-means iteration", log=logger.info)
    assignment, previous_error = None, np.inf
    for _ in range(num_iterations):
        if assignment is None or num_neighbors is None or num_neighbors + 1 >= num_clusters:
            assignment, distances = functional.nearest_words(x, centroids)
            distances, assignment = distances[:, 0], assignment[:, 0]
        else:
            distances, assignment = _assign_near_previous(x, centroids, assignment,
                                                          num_neighbors)
        centroids = _update_centroids(x, assignment, centroids, rng)
        error = float(distances.mean())
        progress.step(note=f"mean squared distance {error:.4g}")
        if error > (1 - tolerance) * previous_error:
            logger.info("k-means converged: the mean squared distance fell by less than "
                        "%.2g%% in the last iteration", 100 * tolerance)
            break
        previous_error = error
    return centroids


def _assign_near_previous(x: np.ndarray, centroids: np.ndarray, assignment: np.ndarray,
                          num_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest word of each descriptor among the words nearest its previous word.

    Returns squared distances float32 [N] and word ids int64 [N]."""
    candidates = functional.nearest_words(centroids, centroids, num_neighbors + 1)[0]
    # Make sure each word is a candidate for its own descriptors (ties could drop it).
    missing = (candidates != np.arange(len(centroids))[:, None]).all(1)
    candidates[missing, -1] = np.flatnonzero(missing)
    centroid_norms = np.einsum("kd,kd->k", centroids, centroids)
    order = np.argsort(assignment, kind="stable")
    ends = np.cumsum(np.bincount(assignment, minlength=len(centroids)))
    new_assignment = np.empty_like(assignment)
    new_distances = np.empty(len(x), dtype=np.float32)
    start = 0
    for word, end in enumerate(ends):
        if end == start:
            continue
        members = order[start:end]
        start = end
        points = x[members]
        words = candidates[word]
        scores = centroid_norms[words] - 2 * (points @ centroids[words].T)
        best = scores.argmin(1)
        new_assignment[members] = words[best]
        new_distances[members] = scores[np.arange(len(best)), best]
    new_distances += np.einsum("nd,nd->n", x, x)
    return np.maximum(new_distances, 0), new_assignment


def _update_centroids(x: np.ndarray, assignment: np.ndarray, centroids: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """Means of the assigned descriptors; an empty word takes half of a large word, chosen
    with probability proportional to its size - 1, as faiss does."""
    import scipy.sparse

    num_clusters = len(centroids)
    counts = np.bincount(assignment, minlength=num_clusters).astype(np.float64)
    membership = scipy.sparse.csr_array(
        (np.ones(len(x), dtype=np.float32), (assignment, np.arange(len(x)))),
        shape=(num_clusters, len(x)))
    sums = membership @ x
    new = centroids.copy()
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled, None]
    signs = np.where(np.arange(x.shape[1]) % 2 == 0, 1.0, -1.0) / 1024
    for empty in np.flatnonzero(~filled):
        weights = np.maximum(counts - 1, 0)
        donor = rng.choice(num_clusters, p=weights / weights.sum())
        new[empty] = new[donor] * (1 + signs)
        new[donor] = new[donor] * (1 - signs)
        counts[empty] = counts[donor] = counts[donor] / 2
    return new.astype(np.float32)

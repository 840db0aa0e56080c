"""Descriptor post-processing outside the graph: L2 normalisation, PCA parameter
loading from DatumProto files, and DELG* binarisation (NumPy)."""

import dataclasses
import os

import numpy as np

from delf_tf import binary_codes
from delf_tf.io import datum_io
from delf_tf.protos import delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "LoadPcaParameters",
    # delf_tf's own API.
    "PcaParameters", "l2_normalize", "binarize",
]

# Guards the division for all-zero descriptors (they stay zero).
_L2_EPSILON = 1e-12


@dataclasses.dataclass(frozen=True)
class PcaParameters:
    """PCA parameters as arrays: mean [D], matrix [D', D] (rows = components),
    variances [D'] (None without whitening); output_dim <= D'."""

    mean: np.ndarray
    matrix: np.ndarray
    output_dim: int
    use_whitening: bool = False
    variances: np.ndarray | None = None


def l2_normalize(data: np.ndarray, axis: int = -1) -> np.ndarray:
    """Returns `data` (float [..., D]) scaled to unit L2 norm along `axis`."""
    data = np.asarray(data, dtype=np.float32)
    norm = np.linalg.norm(data, axis=axis, keepdims=True)
    return data / np.maximum(norm, _L2_EPSILON)


def _read_datum(path: str, what: str) -> np.ndarray:
    if not path:
        raise ValueError(f"PCA {what} path is empty in the DelfPcaParameters config")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PCA {what} file not found: {path}")
    return datum_io.ReadFromFile(path)


def LoadPcaParameters(config: delf_config_pb2.DelfPcaParameters) -> PcaParameters:
    """Reads the mean / projection matrix (/ variances) DatumProto files named by
    `config` and checks their shapes against each other and pca_dim."""
    mean = _read_datum(config.mean_path, "mean").astype(np.float32).ravel()
    matrix = _read_datum(config.projection_matrix_path, "projection matrix").astype(np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != mean.size:
        raise ValueError(
            f"PCA projection matrix {config.projection_matrix_path} has shape "
            f"{matrix.shape}; expected [components, {mean.size}] to match the mean "
            f"{config.mean_path}")
    if not 0 < config.pca_dim <= matrix.shape[0]:
        raise ValueError(
            f"pca_dim {config.pca_dim} must be in [1, {matrix.shape[0]}] (rows of "
            f"{config.projection_matrix_path})")
    variances = None
    if config.use_whitening:
        variances = _read_datum(config.pca_variances_path, "variances").astype(np.float32).ravel()
        if variances.size < config.pca_dim:
            raise ValueError(
                f"PCA variances {config.pca_variances_path} have {variances.size} "
                f"entries, fewer than pca_dim {config.pca_dim}")
    return PcaParameters(mean=mean, matrix=matrix, output_dim=int(config.pca_dim),
                         use_whitening=bool(config.use_whitening), variances=variances)


# DELG* binarisation: float [N, D] -> uint8 [N, ceil(D/8)], sign bits packed big-endian.
binarize = binary_codes.binarize

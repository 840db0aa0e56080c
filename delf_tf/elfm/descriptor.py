"""One image's ELFM descriptor: clustering + whitening + binary codes, and its file format.

File `<name>.elfm` (a DatumPairProto, readable with datum_io.ReadPairFromFile):
  first:  uint32 [k, 2 * ceil(D / 64)] - the packed codes, one row per cluster (k <= K; fewer
          when the image gave fewer than K local features); bit d of a code is bit d % 32 of
          word d // 32 (bits past D are 0);
  second: uint32 [1] - D, the number of bits per code.
File `<name>.elfm_float` (optional, a DatumProto): float32 [k, D], the whitened, L2-normalised
cluster representatives before binarisation (for the cosine ablation).
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from delf_tf.elfm import functional as F
from delf_tf.io import atomic, datum_io

__all__ = [
    # The original's names (the compatibility surface).
    "SerializeCodes", "ParseCodes", "WriteCodesToFile", "ReadCodesFromFile",
    # delf_tf's own API.
    "CODES_EXTENSION", "FLOAT_EXTENSION", "WhitenFn", "ElfmDescriptor", "describe",
    "codes_to_words", "words_to_codes",
]

CODES_EXTENSION = ".elfm"
FLOAT_EXTENSION = ".elfm_float"

# float32 [k, D] -> float32 [k, Dw]: the model's whitening (DELG's embedding layer).
WhitenFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class ElfmDescriptor:
    """codes: uint8 [k, 8 * ceil(D / 64)] packed bits; dim: D; representatives: float32 [k, D]
    whitened + L2-normalised; labels: int64 [n] cluster of each selected feature; selected:
    int64 [n] indices of the selected features in the input rows."""

    codes: np.ndarray
    dim: int
    representatives: np.ndarray | None = None
    labels: np.ndarray | None = None
    selected: np.ndarray | None = None

    @property
    def num_clusters(self) -> int:
        return int(self.codes.shape[0])


def describe(features: np.ndarray, whiten: WhitenFn | None = None, *,
             num_features: int = F.DEFAULT_NUM_FEATURES,
             num_clusters: int = F.DEFAULT_NUM_CLUSTERS,
             gem_power: float = F.DEFAULT_GEM_POWER,
             max_iterations: int = F.DEFAULT_MAX_ITERATIONS,
             dim: int | None = None) -> ElfmDescriptor:
    """Local vectors of one image (float [n, D], all scales merged) -> its ELFM descriptor.

    Keeps the `num_features` rows of largest L2 norm, clusters them into min(num_clusters, n)
    clusters, GeM-pools each cluster, whitens (`whiten`, identity when None), L2-normalises
    and binarises (x > 0). `dim` (the whitened width) is needed only when n == 0.
    """
    features = np.asarray(features, np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [n, D], got shape {features.shape}")
    selected = F.select_by_norm(features, num_features)
    points = features[selected]
    if not len(points):
        width = dim if dim is not None else (
                features.shape[1] if whiten is None else None)
        if width is None:
            raise ValueError("no local features and no dim given: cannot tell the code width")
        return ElfmDescriptor(np.zeros([0, 8 * F.num_words(width)], np.uint8), int(width),
                              np.zeros([0, width], np.float32), np.zeros([0], np.int64),
                              selected)
    _, labels = F.kmeans(points, num_clusters, max_iterations)
    pooled = F.cluster_gem(points, labels, min(num_clusters, len(points)), gem_power)
    whitened = pooled if whiten is None else np.asarray(whiten(pooled), np.float32)
    representatives = F.l2_normalize(whitened)
    return ElfmDescriptor(F.pack_codes(F.binarize(representatives)), representatives.shape[1],
                          representatives, labels, selected)


def codes_to_words(codes: np.ndarray) -> np.ndarray:
    """Packed uint8 [k, B] (B a multiple of 4) -> uint32 [k, B / 4] little-endian words."""
    return np.ascontiguousarray(codes, np.uint8).view("<u4").astype(np.uint32)


def words_to_codes(words: np.ndarray) -> np.ndarray:
    """Inverse of `codes_to_words`."""
    return np.ascontiguousarray(np.asarray(words, np.uint32).astype("<u4")).view(np.uint8)


def SerializeCodes(codes: np.ndarray, dim: int) -> bytes:
    """Packed codes uint8 [k, 8 * ceil(dim / 64)] -> bytes of the `.elfm` DatumPairProto."""
    codes = np.asarray(codes, np.uint8)
    if codes.ndim != 2 or codes.shape[1] != 8 * F.num_words(dim):
        raise ValueError(f"codes of shape {codes.shape} do not hold {dim}-bit codes")
    pair = datum_io.ArraysToDatumPair(codes_to_words(codes), np.array([dim], np.uint32))
    # An image without clusters still writes a uint32 list (empty), so the kind is kept.
    pair.first.uint32_list.SetInParent()
    return pair.SerializeToString()


def ParseCodes(data: bytes, source: str = "input") -> tuple[np.ndarray, int]:
    """Bytes of a `.elfm` file -> (packed codes uint8 [k, 8 * ceil(D / 64)], D)."""
    words, header = datum_io.ParsePairFromString(data, source)
    if header.shape != (1,) or words.ndim != 2:
        raise ValueError(f"{source}: not an ELFM code file (shapes {words.shape}, {header.shape})")
    dim = int(header[0])
    if words.shape[1] != 2 * F.num_words(dim):
        raise ValueError(f"{source}: {words.shape[1]} words per code cannot hold {dim} bits")
    return words_to_codes(words).reshape(len(words), 8 * F.num_words(dim)), dim


def WriteCodesToFile(codes: np.ndarray, dim: int, path: str) -> None:
    """Writes a `.elfm` file atomically."""
    atomic.write_bytes_atomic(path, SerializeCodes(codes, dim))


def ReadCodesFromFile(path: str) -> tuple[np.ndarray, int]:
    """Reads a `.elfm` file -> (packed codes uint8 [k, B], D)."""
    return ParseCodes(atomic.read_bytes(path), path)

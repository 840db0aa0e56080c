"""Nearest-neighbour descriptor matching by batched matrix products.

The original matched with a SciPy KD-tree, which degenerates to a slow
brute-force search for 40- to 128-D descriptors. Here the exact nearest
neighbours come from one BLAS matrix product per batch of query rows:
argmin ||q - x||^2 = argmax (q.x - ||x||^2 / 2), scored in float32 (the offset
rides along as an extra column of the product), then the distances of the
chosen neighbours are recomputed exactly in float64 so thresholds behave as
with the KD-tree.

Binarized DELG* descriptors arrive bit-packed as uint8 [N, D/8] (D bits of +-1
codes). Their distance is the Euclidean distance of the codes normalised to unit
length: for +-1/sqrt(D) codes ||a - b||^2 = 4 h / D, i.e.

    distance = 2 * sqrt(hamming / D),

so the float thresholds apply unchanged (0.9, 1.0; a match within 1.0 means
fewer than D/4 differing bits). Hamming distances come from a product of the
unpacked +-1 codes (q.x = D - 2h, exact in float32), so bit order does not
matter as long as both sides were packed the same way.
"""

from typing import NamedTuple

import numpy as np

from delf_tf import binary_codes

__all__ = [
    "PreparedDescriptors", "is_binary", "prepare_descriptors", "nearest_neighbors",
    "putative_matches",
]

# Bounds the float32 score matrix of one batch to 64 MiB.
_MAX_BATCH_ELEMENTS = 1 << 24


class PreparedDescriptors(NamedTuple):
    """Descriptors converted once for repeated matching.

    vectors: float32 [N, D] (float descriptors, or the +-1 codes of bit-packed
      ones). offsets: float32 [N], -||x||^2/2 of float descriptors (added to the
      scores q.x when they are the index side), zeros for binary ones. raw: the
      original descriptors (float32 or float64 [N, D], or uint8 [N, D/8]).
      binary: whether they are bit-packed. dim: D (for binary, the number of bits).
      scored: float32 [N, D + 1], vectors and offsets side by side (vectors and
      offsets are views of it), so that [q, 1] @ scored.T gives q.x - ||x||^2/2
      in one matrix product.
    """
    vectors: np.ndarray
    offsets: np.ndarray
    raw: np.ndarray
    binary: bool
    dim: int
    scored: np.ndarray


def _prepared(vectors: np.ndarray, offsets: np.ndarray, raw: np.ndarray, binary: bool
              ) -> PreparedDescriptors:
    scored = np.empty([len(vectors), vectors.shape[1] + 1], dtype=np.float32)
    scored[:, :-1] = vectors
    scored[:, -1] = offsets
    return PreparedDescriptors(scored[:, :-1], scored[:, -1], raw, binary, vectors.shape[1],
                               scored)


def is_binary(descriptors: np.ndarray) -> bool:
    """True for bit-packed (unsigned integer) descriptors."""
    return np.issubdtype(np.asarray(descriptors).dtype, np.integer)


def prepare_descriptors(descriptors: np.ndarray) -> PreparedDescriptors:
    """Converts descriptors [N, D] (float) or [N, D/8] (bit-packed uint8) once,
    for use on either side of `nearest_neighbors`."""
    descriptors = np.asarray(descriptors)
    if descriptors.ndim == 1 and descriptors.size == 0:
        descriptors = descriptors.reshape(0, 0)
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be [N, D], got shape {descriptors.shape}")
    num = len(descriptors)
    if is_binary(descriptors):
        if descriptors.size and (descriptors.min() < 0 or descriptors.max() > 255):
            raise ValueError("bit-packed descriptors must hold byte values (0..255)")
        raw = descriptors.astype(np.uint8, copy=False)
        bits = np.unpackbits(raw, axis=1).astype(np.float32)
        return _prepared(2.0 * bits - 1.0, np.zeros([num], np.float32), raw, True)
    if not np.issubdtype(descriptors.dtype, np.floating):
        raise ValueError(f"unsupported descriptor dtype {descriptors.dtype}")
    # float32 input is used as is (feature files hold float32 values, so reading
    # them as float32 is lossless and halves the memory of cached index images).
    raw = descriptors if descriptors.dtype == np.float32 else descriptors.astype(np.float64)
    raw64 = raw.astype(np.float64)
    offsets = (-0.5 * np.einsum("ij,ij->i", raw64, raw64)).astype(np.float32)
    return _prepared(raw, offsets, raw, False)


def _check_compatible(query: PreparedDescriptors, index: PreparedDescriptors) -> None:
    if query.binary != index.binary:
        raise ValueError(
            "cannot match binarized (uint8) descriptors against float descriptors")
    if len(query.raw) and len(index.raw) and query.dim != index.dim:
        raise ValueError(
            "Local feature dimensionality is not consistent for query and index images: "
            f"{query.dim} vs {index.dim}")


def _exact_distances(query: PreparedDescriptors, index: PreparedDescriptors,
                     cols: np.ndarray) -> np.ndarray:
    """Distances (float64 [Nq]) of every query descriptor to index descriptor
    cols[i], Hamming converted as documented."""
    if query.binary:
        hamming = binary_codes.hamming_distance(query.raw, index.raw[cols])
        return 2.0 * np.sqrt(hamming / query.dim)
    difference = np.subtract(query.raw, index.raw[cols], dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", difference, difference))


def nearest_neighbors(
    query: PreparedDescriptors | np.ndarray,
    index: PreparedDescriptors | np.ndarray,
    k: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest index descriptors (k = 1 or 2) of every query descriptor.

    Returns:
      distances float64 [Nq, k] (inf where the index has fewer than k entries)
      and indices int64 [Nq, k] (-1 there), nearest first.
    """
    if k not in (1, 2):
        raise ValueError(f"k must be 1 or 2, got {k}")
    if not isinstance(query, PreparedDescriptors):
        query = prepare_descriptors(query)
    if not isinstance(index, PreparedDescriptors):
        index = prepare_descriptors(index)
    _check_compatible(query, index)
    num_query, num_index = len(query.raw), len(index.raw)
    distances = np.full([num_query, k], np.inf)
    indices = np.full([num_query, k], -1, dtype=np.int64)
    if not num_query or not num_index:
        return distances, indices

    batch = max(1, _MAX_BATCH_ELEMENTS // num_index)
    # One product scores q.x - ||x||^2/2 (larger = closer, for float vectors and
    # +-1 codes alike): [q, 1] against the index's [x, -||x||^2/2] rows, a
    # transposed view BLAS multiplies directly.
    index_t = index.scored.T
    query_rows = np.ones([min(batch, num_query), query.dim + 1], dtype=np.float32)
    for start in range(0, num_query, batch):
        stop = min(start + batch, num_query)
        rows = query_rows[:stop - start]
        rows[:, :-1] = query.vectors[start:stop]
        scores = rows @ index_t
        best = np.argmax(scores, axis=1)
        indices[start:stop, 0] = best
        if k == 2 and num_index > 1:
            scores[np.arange(stop - start), best] = -np.inf
            indices[start:stop, 1] = np.argmax(scores, axis=1)
    for j in range(min(k, num_index)):
        distances[:, j] = _exact_distances(query, index, indices[:, j])
    if k == 2 and num_index > 1:
        # float32 scores can swap near-ties; the exact distances decide.
        swap = distances[:, 1] < distances[:, 0]
        distances[swap] = distances[swap][:, ::-1]
        indices[swap] = indices[swap][:, ::-1]
    return distances, indices


def putative_matches(
    query: PreparedDescriptors | np.ndarray,
    index: PreparedDescriptors | np.ndarray,
    threshold: float,
    use_ratio_test: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Matches every query descriptor to its nearest index descriptor.

    A match is kept if its distance is < threshold, or, with the ratio test,
    if d1 < threshold * d2 (d1, d2: nearest and second-nearest distances; an
    index with one descriptor has d2 = inf).

    Returns:
      (query_ids, index_ids): int64 [M] each, in query order.
    """
    distances, indices = nearest_neighbors(query, index, k=2 if use_ratio_test else 1)
    if use_ratio_test:
        keep = distances[:, 0] < threshold * distances[:, 1]
    else:
        keep = distances[:, 0] < threshold
    keep &= indices[:, 0] >= 0
    query_ids = np.flatnonzero(keep)
    return query_ids, indices[query_ids, 0]

"""Exhaustive global-descriptor search in bounded memory.

Similarity is the dot product (cosine for the L2-normalised DELG global
descriptors). Scores are computed for a batch of queries against a chunk of
the index at a time, so the temporary score matrix never exceeds
`max_batch_elements` entries whatever the index size; with `top_k` only the
best k per query are kept between chunks.
"""

import numpy as np

__all__ = ["DEFAULT_MAX_BATCH_ELEMENTS", "global_search"]

# 2^25 float32 scores: 128 MiB per batch.
DEFAULT_MAX_BATCH_ELEMENTS = 1 << 25

_LOW_32 = np.uint64(0xFFFFFFFF)


def _descending_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys whose ascending order is float32 `scores` descending.

    -0.0 counts as 0.0 and NaN sorts last, as in `np.argsort(-scores)`.
    """
    bits = (scores + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into 0.0
    # Negative floats: larger bits are smaller numbers, so the bits sort as is;
    # non-negative ones: larger bits are larger numbers, so they are flipped
    # below every negative key.
    keys = np.where(bits >> 31, bits, bits ^ np.uint32(0x7FFFFFFF))
    nan = np.isnan(scores)
    if nan.any():
        keys[nan] = np.uint32(0xFFFFFFFF)
    return keys


def _packed_rank(keys: np.ndarray, ids: np.ndarray, out_ids: np.ndarray,
                 out_scores: np.ndarray) -> None:
    """Sorts (score key, id) pairs packed in 64 bits into out_ids (int64) and
    out_scores (float32): the exact order of a stable sort, in one sort that is
    faster than argsort (no index indirection)."""
    packed = keys.astype(np.uint64)
    packed <<= np.uint64(32)
    packed |= ids
    packed.sort(axis=-1)
    # Little-endian halves: [..., 0] the id, [..., 1] the key.
    halves = packed.view(np.uint32).reshape(*packed.shape, 2)
    out_ids[...] = halves[..., 0]
    keys = halves[..., 1]
    out_scores.view(np.uint32)[...] = np.where(keys >> 31, keys, keys ^ np.uint32(0x7FFFFFFF))


def _rank(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorts each row by score descending, ties by ascending id."""
    if scores.dtype == np.float32 and (ids.size == 0 or ids.max() <= _LOW_32):
        out_ids, out_scores = np.empty(ids.shape, np.int64), np.empty(scores.shape, np.float32)
        _packed_rank(_descending_keys(scores), ids.astype(np.uint64), out_ids, out_scores)
        return out_ids, out_scores
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(ids, order, -1), np.take_along_axis(scores, order, -1)


def _rank_all(scores: np.ndarray, out_ids: np.ndarray, out_scores: np.ndarray) -> None:
    """Full ranking of score rows [Q, N] over ids 0..N-1, into the outputs."""
    if scores.dtype == np.float32 and scores.shape[1] <= _LOW_32:
        _packed_rank(_descending_keys(scores), np.arange(scores.shape[1], dtype=np.uint64),
                     out_ids, out_scores)
        return
    order = np.argsort(-scores, axis=-1, kind="stable")
    out_ids[...] = order
    out_scores[...] = np.take_along_axis(scores, order, -1)


def _best_k(ids: np.ndarray | None, scores: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """The k best of each row (unordered): all scores above the k-th best plus
    the lowest ids among those equal to it.

    `ids` None means ids 0..N-1 (positions); returns (positions or ids [Q, k],
    scores [Q, k]).
    """
    if scores.shape[1] <= k:
        positions = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        return (positions if ids is None else ids), scores
    positions = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    best = np.take_along_axis(scores, positions, 1)
    kth = best.min(axis=1, keepdims=True)
    # argpartition keeps an arbitrary subset of scores tied with the k-th best;
    # rows where some of them were left out are redone by id.
    for row in np.flatnonzero((scores == kth).sum(1) != (best == kth).sum(1)):
        above = np.flatnonzero(scores[row] > kth[row])
        tied = np.flatnonzero(scores[row] == kth[row])
        if ids is not None:
            tied = tied[np.argsort(ids[row, tied], kind="stable")]
        positions[row] = np.concatenate([above, tied[:k - len(above)]])
        best[row] = scores[row, positions[row]]
    return (positions if ids is None else np.take_along_axis(ids, positions, 1)), best


def global_search(
    query_descriptors: np.ndarray,
    index_descriptors: np.ndarray,
    top_k: int | None = None,
    max_batch_elements: int = DEFAULT_MAX_BATCH_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks index images for every query by descriptor dot product.

    Args:
      query_descriptors: float [Q, D].
      index_descriptors: float [N, D].
      top_k: keep the best k per query; None ranks the whole index.
      max_batch_elements: bound on the score entries computed at once.

    Returns:
      (ranks int64 [Q, K], scores [Q, K]) with K = min(top_k, N) (N if top_k is
      None), best first; equal scores are ordered by index id. Scores are
      float32 for float32 inputs, float64 otherwise.
    """
    query_descriptors = np.asarray(query_descriptors)
    index_descriptors = np.asarray(index_descriptors)
    if query_descriptors.ndim != 2 or index_descriptors.ndim != 2:
        raise ValueError(
            f"descriptors must be [Q, D] and [N, D], got {query_descriptors.shape} "
            f"and {index_descriptors.shape}")
    if query_descriptors.shape[1] != index_descriptors.shape[1]:
        raise ValueError(
            f"query descriptors are {query_descriptors.shape[1]}-D but index "
            f"descriptors are {index_descriptors.shape[1]}-D")
    dtype = np.result_type(query_descriptors.dtype, index_descriptors.dtype, np.float32)
    num_queries, num_index = len(query_descriptors), len(index_descriptors)
    k = num_index if top_k is None else max(0, min(int(top_k), num_index))
    ranks = np.zeros([num_queries, k], dtype=np.int64)
    scores = np.zeros([num_queries, k], dtype=dtype)
    if not num_queries or not k:
        return ranks, scores
    index_descriptors = index_descriptors.astype(dtype, copy=False)
    if top_k is None:
        _full_ranking(query_descriptors, index_descriptors, max_batch_elements, ranks, scores)
    else:
        _top_k_ranking(query_descriptors, index_descriptors, k, max_batch_elements, ranks,
                       scores)
    return ranks, scores


def _full_ranking(query_descriptors, index_descriptors, max_batch_elements, ranks,
                  scores) -> None:
    """Fills ranks / scores [Q, N] with every index image per query, in query batches."""
    # Full ranking needs all N scores of a query at once.
    batch = max(1, max_batch_elements // len(index_descriptors))
    for start in range(0, len(query_descriptors), batch):
        queries = query_descriptors[start:start + batch].astype(index_descriptors.dtype,
                                                                copy=False)
        _rank_all(queries @ index_descriptors.T, ranks[start:start + batch],
                  scores[start:start + batch])


def _top_k_ranking(query_descriptors, index_descriptors, k, max_batch_elements, ranks,
                   scores) -> None:
    """Fills ranks / scores [Q, k] with the best k per query, over index chunks."""
    num_queries, num_index = len(query_descriptors), len(index_descriptors)
    dtype = index_descriptors.dtype
    chunk = max(1, min(num_index, max_batch_elements // 2))
    batch = max(1, max_batch_elements // (chunk + k))
    for start in range(0, num_queries, batch):
        queries = query_descriptors[start:start + batch].astype(dtype, copy=False)
        best_ids = best_scores = None
        for chunk_start in range(0, num_index, chunk):
            positions, chunk_scores = _best_k(
                None, queries @ index_descriptors[chunk_start:chunk_start + chunk].T, k)
            chunk_ids = positions + chunk_start
            if best_ids is not None:
                chunk_ids, chunk_scores = _best_k(
                    np.concatenate([best_ids, chunk_ids], axis=1),
                    np.concatenate([best_scores, chunk_scores], axis=1), k)
            best_ids, best_scores = chunk_ids, chunk_scores
        ranks[start:start + batch], scores[start:start + batch] = _rank(best_ids, best_scores)

"""Exhaustive global-descriptor search in bounded memory.

Similarity is the dot product (cosine for the L2-normalised DELG global
descriptors). Scores are computed for a batch of queries against a chunk of
the index at a time, so the temporary score matrix never exceeds
`max_batch_elements` entries whatever the index size; with `top_k` only the
best k per query are kept between chunks.
"""

import numpy as np

# 2^25 float32 scores: 128 MiB per batch.
DEFAULT_MAX_BATCH_ELEMENTS = 1 << 25


def _rank(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorts each row by score descending, ties by ascending id."""
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(ids, order, -1), np.take_along_axis(scores, order, -1)


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

    # Full ranking needs all N scores of a query at once; top-k only a chunk.
    chunk = num_index if top_k is None else max(1, min(num_index, max_batch_elements // 2))
    batch = max(1, max_batch_elements // (chunk + k))
    index_descriptors = index_descriptors.astype(dtype, copy=False)
    for start in range(0, num_queries, batch):
        queries = query_descriptors[start:start + batch].astype(dtype, copy=False)
        best_ids = np.zeros([len(queries), 0], dtype=np.int64)
        best_scores = np.zeros([len(queries), 0], dtype=dtype)
        for chunk_start in range(0, num_index, chunk):
            chunk_scores = queries @ index_descriptors[chunk_start:chunk_start + chunk].T
            chunk_ids = np.broadcast_to(
                np.arange(chunk_start, chunk_start + chunk_scores.shape[1]), chunk_scores.shape)
            candidate_ids = np.concatenate([best_ids, chunk_ids], axis=1)
            candidate_scores = np.concatenate([best_scores, chunk_scores], axis=1)
            if candidate_ids.shape[1] > k:
                keep = np.argpartition(-candidate_scores, k - 1, axis=1)[:, :k]
                candidate_ids = np.take_along_axis(candidate_ids, keep, 1)
                candidate_scores = np.take_along_axis(candidate_scores, keep, 1)
            best_ids, best_scores = candidate_ids, candidate_scores
        ranks[start:start + batch], scores[start:start + batch] = _rank(best_ids, best_scores)
    return ranks, scores

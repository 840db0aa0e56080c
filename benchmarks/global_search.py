"""Exact global search: delf_tf's global_search vs plain NumPy, same batches.

Times, in one process, on random L2-normalised float32 descriptors:
  full ranking   ours: search.global_search(queries, index)
                 plain NumPy: scores = q @ X.T; np.argsort(-scores, axis=1)
                 (not tie-stable), and the previous implementation's
                 np.lexsort((ids, -scores)) for reference;
  top-k          ours: search.global_search(..., top_k=k)
                 plain NumPy: np.argpartition(-scores, k - 1)[:, :k], then an
                 argsort of those k.
Both sides use the same query batches (max_batch_elements // N queries per
matrix product); our ranks are checked against a stable argsort.

Usage: .venv/bin/python benchmarks/global_search.py [--num_index 100000]
       [--dim 2048] [--num_queries 64] [--top_k 100]
"""

import os

import numpy as np
from _results import flag_parser, timed, write_result

from delf_tf.retrieval import search

_RESULT = os.path.join(os.path.dirname(__file__), "results", "global_search.json")


def _batches(queries, index, batch, rank):
    for start in range(0, len(queries), batch):
        rank(queries[start:start + batch] @ index.T)


def _normalised(rng, n, dim):
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    parser = flag_parser(__doc__, num_index=100_000, dim=2048, num_queries=64, top_k=100, repeats=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    index = _normalised(rng, args.num_index, args.dim)
    queries = _normalised(rng, args.num_queries, args.dim)
    batch = max(1, search.DEFAULT_MAX_BATCH_ELEMENTS // args.num_index)
    k = args.top_k

    ranks, _ = search.global_search(queries[:4], index)
    expected = np.argsort(-(queries[:4] @ index.T), axis=1, kind="stable")
    assert (ranks == expected).all(), "full ranking differs from a stable argsort"
    top, _ = search.global_search(queries[:4], index, top_k=k)
    assert (top == expected[:, :k]).all(), "top-k differs from a stable argsort"

    def argsort(scores):
        return np.argsort(-scores, axis=1)

    def lexsort(scores):
        ids = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        return np.lexsort((ids, -scores), axis=-1)

    def argpartition(scores):
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(scores, part, 1)
        return np.take_along_axis(part, np.argsort(-best, axis=1), 1)

    rankers = {
        "ours_full": lambda: search.global_search(queries, index),
        "numpy_argsort_full": lambda: _batches(queries, index, batch, argsort),
        "previous_lexsort_full": lambda: _batches(queries, index, batch, lexsort),
        "ours_top_k": lambda: search.global_search(queries, index, top_k=k),
        "numpy_argpartition_top_k": lambda: _batches(queries, index, batch, argpartition),
        "matmul_only": lambda: _batches(queries, index, batch, lambda s: s),
    }
    timings = {name: timed(rank, args.repeats).best for name, rank in rankers.items()}
    results = {"num_index": args.num_index, "dim": args.dim, "num_queries": args.num_queries,
               "top_k": k, "queries_per_batch": min(batch, args.num_queries)}
    for name, (wall, cpu) in timings.items():
        results[f"{name}_ms_per_query"] = 1e3 * wall / args.num_queries
        results[f"{name}_cpu_ms_per_query"] = 1e3 * cpu / args.num_queries
        print(f"{name:26s} {1e3 * wall / args.num_queries:8.2f} ms/query wall"
              f"  {1e3 * cpu / args.num_queries:8.2f} ms/query CPU")
    for ours, baseline in (("ours_full", "numpy_argsort_full"),
                           ("ours_full", "previous_lexsort_full"),
                           ("ours_top_k", "numpy_argpartition_top_k")):
        ratio = timings[ours][0] / timings[baseline][0]
        ratio_cpu = timings[ours][1] / timings[baseline][1]
        results[f"{ours}_over_{baseline}"] = ratio
        results[f"{ours}_over_{baseline}_cpu"] = ratio_cpu
        print(f"{ours} / {baseline}: {ratio:.2f} wall, {ratio_cpu:.2f} CPU")
    write_result(_RESULT, results)


if __name__ == "__main__":
    main()

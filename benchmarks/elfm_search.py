"""ELFM search speed on synthetic codes of the real size (K = 10 codes of D = 2048 bits).

Times, in one process, ms per query for database sizes 10k, 100k, 1M:
  exhaustive   ElfmIndex.search over every image, wall and process CPU time: numba kernel,
               faiss `hammings` (up to --faiss_max images), NumPy xor + bitwise_count (up
               to --numpy_max images); queries go in batches of 16, as the index does;
  loop         the plain NumPy loop over images (functional.elfm_similarity per image),
               timed on --loop_images images and scaled to N (it is linear in N);
  shortlist    ElfmIndex.search restricted to --shortlist images per query (the second
               stage after a global-descriptor search), plus a float32 global search
               (retrieval.search.global_search, D = 2048) timed at up to 100k images and
               scaled to N.
Checks that the backends return identical rankings. Writes benchmarks/results/elfm_search.json.

Usage: .venv/bin/python benchmarks/elfm_search.py [--sizes 10000,100000,1000000]
       [--num_queries 16] [--numpy_max 100000] [--loop_images 2000] [--shortlist 10000]
"""

import json
import os

import numpy as np
from _results import flag_parser, timed, write_result

from delf_tf.elfm import functional as F
from delf_tf.elfm import index as elfm_index
from delf_tf.retrieval import search

_RESULT = os.path.join(os.path.dirname(__file__), "results", "elfm_search.json")
_K, _DIM = 10, 2048


def main():
    parser = flag_parser(__doc__, sizes="10000,100000,1000000", num_queries=16, numpy_max=100000,
                         faiss_max=1000000, loop_images=2000, shortlist=10000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=[max(sizes), _K, _DIM // 8], dtype=np.uint8)
    counts = np.full([max(sizes)], _K, np.uint8)
    queries = [rng.integers(0, 256, size=[_K, _DIM // 8], dtype=np.uint8)
               for _ in range(args.num_queries)]

    loop = timed(lambda: [F.elfm_similarity(queries[0], c, _DIM)
                          for c in codes[:args.loop_images]])
    loop_per_image = loop.wall / args.loop_images
    loop_cpu_per_image = loop.cpu / args.loop_images
    global_n = min(max(sizes), 100000)
    global_index = rng.standard_normal([global_n, _DIM], dtype=np.float32)
    global_queries = rng.standard_normal([args.num_queries, _DIM], dtype=np.float32)
    global_seconds = timed(lambda q=global_queries, x=global_index: search.global_search(
        q, x, args.shortlist), 2).wall
    global_per_image_query = global_seconds / args.num_queries / global_n
    del global_index

    if elfm_index._numba is not None:  # compile the kernel outside the timings
        elfm_index.ElfmIndex(codes[:2], counts[:2], _DIM).search(queries[:1], backend="numba")
    rows = []
    for n in sizes:
        index = elfm_index.ElfmIndex(codes[:n], counts[:n], _DIM)
        row = {"images": n, "bytes_per_image_codes": _K * _DIM // 8 + 1}
        backends = (["numba"] if elfm_index._numba is not None else []) + (
                ["faiss"] if elfm_index._faiss is not None and n <= args.faiss_max else []) + (
                ["numpy"] if n <= args.numpy_max else [])
        rankings = {}
        for backend in backends:
            run = timed(lambda i=index, b=backend: i.search(queries, top_k=100, backend=b))
            row[f"exhaustive_{backend}_ms_per_query"] = 1000 * run.wall / len(queries)
            row[f"exhaustive_{backend}_cpu_ms_per_query"] = 1000 * run.cpu / len(queries)
            rankings[backend] = [ids for ids, _ in run.result]
        reference = next(iter(rankings.values()))
        row["backends_agree"] = all(np.array_equal(a, b) for other in rankings.values()
                                    for a, b in zip(reference, other))
        row["loop_ms_per_query"] = 1000 * loop_per_image * n
        row["loop_cpu_ms_per_query"] = 1000 * loop_cpu_per_image * n
        fastest = backends[0]
        row["speedup_vs_loop"] = (row["loop_ms_per_query"]
                                  / row[f"exhaustive_{fastest}_ms_per_query"])
        row["cpu_speedup_vs_loop"] = (row["loop_cpu_ms_per_query"]
                                      / row[f"exhaustive_{fastest}_cpu_ms_per_query"])
        if args.shortlist < n:
            shortlist = np.stack([rng.choice(n, args.shortlist, replace=False)
                                  for _ in queries])
            seconds = timed(lambda i=index, s=shortlist: i.search(queries, top_k=100,
                                                                  shortlist=s)).wall
            row["shortlist_size"] = args.shortlist
            row["shortlist_elfm_ms_per_query"] = 1000 * seconds / len(queries)
            row["global_search_ms_per_query_scaled"] = 1000 * global_per_image_query * n
        rows.append(row)
        print(json.dumps(row))
    result = {"K": _K, "D": _DIM, "num_queries": args.num_queries,
              "loop_images_timed": args.loop_images, "global_images_timed": global_n,
              "faiss": elfm_index._faiss is not None, "rows": rows}
    write_result(_RESULT, result)


if __name__ == "__main__":
    main()

"""Search at scale on synthetic descriptors of the real sizes: 10k -> 1M images.

Global descriptors (DELG: 2048-D float32, L2-normalised), per database size N:
  exact    GlobalIndex kind exact (search.global_search, batched matrix
           products), top-100 for a batch of queries: ms per query;
  ivf      faiss IVF-Flat (nlist = sqrt(N), trained on 50 points per cell),
           one query at a time on one thread, nprobe from --nprobe;
  hnsw     faiss HNSW-Flat (M 32, efSearch 128), one query at a time (built
           only up to --hnsw_max_images: its build is slow on 2 shared cores);
  with recall@100 of each approximate index against the exact top-100 and the
  bytes per image of the saved index.
Descriptors are drawn around N / --images_per_cluster random centres (real
descriptors cluster; uniform random vectors have no neighbours worth finding;
a fixed number of images per cluster keeps the neighbourhoods alike at every
N, so a query's top 100 spans a few clusters) and queries are perturbed
database vectors. Times are wall and CPU (process) time: on a
shared machine the CPU time of a single-threaded query is the steadier figure.
2048-D at 1M is 8 GiB of float32, more than this benchmark may take on a shared
24 GiB machine, so the growth 10k -> 1M is
measured at --growth_dim (default 256-D) and the real 2048-D at the sizes up to
--full_dim_max_images.

ASMK* (HOW / DELG local features: 128-D, 65,536 words, 16-byte binary
residuals), per N: the inverted file's query time (similarities to all N images
and the top 100) and its bytes per image (codes + compressed image ids).
Images hold --words_per_image distinct visual words drawn from a skewed
(Zipf-like) distribution; at 1M images the inverted file would need 12 GB at
HOW's ~600 words per image, so sizes above --asmk_full_max_images use
--asmk_words_large words per image (stated in the output).

Usage: .venv/bin/python benchmarks/million.py [--sizes 10000,100000,1000000]
"""

import gc
import json
import os
import tempfile

import numpy as np
from _results import flag_parser, timed, write_result

from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.protos import aggregation_config_pb2
from delf_tf.retrieval import global_index
from delf_tf.retrieval.global_index import GlobalIndex, GlobalIndexParams

_RESULT = os.path.join(os.path.dirname(__file__), "results", "million.json")
_NUM_WORDS = 65536
_LOCAL_DIM = 128


def _clustered(rng, num, dim, centres, chunk=100_000):
    out = np.empty([num, dim], dtype=np.float32)
    for start in range(0, num, chunk):
        n = min(chunk, num - start)
        x = centres[rng.integers(0, len(centres), n)]
        x += 0.6 * rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:start + n] = x
    return out


def _per_query_ms(index, queries, top_k, **kwargs):
    """One query at a time on one thread (a server answering requests)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.Search(queries[:1], top_k, **kwargs)  # warm-up
        run = timed(lambda: np.concatenate([index.Search(q[None], top_k, **kwargs)[0]
                                            for q in queries]))
        return 1e3 * run.wall / len(queries), 1e3 * run.cpu / len(queries), run.result
    finally:
        faiss.omp_set_num_threads(threads)


def _global_rows(args, rng, num, dim):
    num_clusters = max(1, num // args.images_per_cluster)
    centres = rng.standard_normal((num_clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    database = _clustered(rng, num, dim, centres)
    picks = rng.choice(num, args.num_queries, replace=False)
    queries = database[picks] + 0.3 * rng.standard_normal(
        (args.num_queries, dim), dtype=np.float32) / np.sqrt(dim)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    names = [str(i) for i in range(num)]
    rows = []
    exact = GlobalIndex(names, database, GlobalIndexParams())
    exact.Search(queries[:2], args.top_k)  # warm-up
    run = timed(lambda x=exact: x.Search(queries, args.top_k))
    exact_ids, _ = run.result
    exact_ms, exact_cpu = 1e3 * run.wall / len(queries), 1e3 * run.cpu / len(queries)
    rows.append({"index": "exact (batched)", "ms_per_query": exact_ms,
                 "cpu_ms_per_query": exact_cpu, "recall@100": 1.0,
                 "bytes_per_image": 4 * dim, "build_s": 0.0})
    # IVF: sqrt(N) cells trained on 50 points each (k-means cost stays minutes at 1M here).
    nlist = max(1, int(np.sqrt(num)))
    kinds = [("ivf", GlobalIndexParams(kind="ivf", nlist=nlist, train_size=50 * nlist))]
    if num <= args.hnsw_max_images:
        kinds.append(("hnsw", GlobalIndexParams(kind="hnsw", hnsw_m=32, ef_search=128)))
    for kind, params in kinds:
        run = timed(lambda p=params, x=database: GlobalIndex.Build(names, x, p))
        index, build_s = run.result, run.wall
        del run
        settings = ([{"nprobe": p} for p in args.nprobe] if kind == "ivf"
                    else [{"ef_search": params.ef_search}])
        for setting in settings:
            ms, cpu_ms, ids = _per_query_ms(index, queries, args.top_k, **setting)
            label = ", ".join(f"{k} {v}" for k, v in setting.items())
            rows.append({"index": f"{kind} {label} (per query)", "ms_per_query": ms,
                         "cpu_ms_per_query": cpu_ms,
                         "recall@100": global_index.RecallAtK(ids, exact_ids, args.top_k),
                         "bytes_per_image": None, "build_s": build_s})
        with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
            index.Save(tmp)
            # Descriptors are kept beside the faiss index (for exact re-checks);
            # the ANN structure alone is what the faiss file costs.
            with open(os.path.join(tmp, "index.json")) as f:
                manifest = json.load(f)
            ann_bytes = os.path.getsize(os.path.join(tmp, manifest["files"]["faiss"])) / num
        for row in rows:
            if row["bytes_per_image"] is None:
                row["bytes_per_image"] = ann_bytes
        del index
        gc.collect()
    del database, exact
    gc.collect()
    return rows


def _asmk_rows(args, rng, num, words_per_image):
    probabilities = 1.0 / (np.arange(_NUM_WORDS) + 50.0) ** 0.8
    probabilities /= probabilities.sum()
    cumulative = np.cumsum(probabilities)
    code_bytes = _LOCAL_DIM // 8

    def representation():
        draws = np.searchsorted(cumulative, rng.random(int(words_per_image * 1.3)))
        words = np.unique(np.minimum(draws, _NUM_WORDS - 1))[:words_per_image]
        codes = rng.integers(0, 256, size=len(words) * code_bytes, dtype=np.uint8)
        return codes, words.astype(np.int32)

    config = aggregation_config_pb2.AggregationConfig(
        codebook_size=_NUM_WORDS, feature_dimensionality=_LOCAL_DIM,
        aggregation_type=aggregation_config_pb2.AggregationConfig.ASMK_STAR)
    images = [representation() for _ in range(num)]
    run = timed(lambda x=images: AsmkInvertedFile(config).Build([d for d, _ in x],
                                                                [w for _, w in x]))
    inverted_file, build_s = run.result, run.wall
    del run
    del images
    gc.collect()
    state = inverted_file.state_dict()
    stored = sum(state[k].nbytes for k in ("list_lengths", "image_id_gaps", "codes",
                                           "words_per_image"))
    queries = [representation() for _ in range(args.num_asmk_queries)]
    run = timed(lambda x=inverted_file: [x.Search(data, words, top_k=args.top_k)
                                         for data, words in queries])
    ms, cpu_ms = 1e3 * run.wall / len(queries), 1e3 * run.cpu / len(queries)
    del inverted_file, state
    gc.collect()
    return {"index": f"ASMK* ({words_per_image} words/image)", "ms_per_query": ms,
            "cpu_ms_per_query": cpu_ms,
            "bytes_per_image": stored / num, "build_s": build_s}


def main() -> None:
    parser = flag_parser(__doc__, sizes="10000,100000,1000000", growth_dim=256, full_dim=2048,
                         full_dim_max_images=100_000, hnsw_max_images=10_000, images_per_cluster=50,
                         num_queries=50, num_asmk_queries=10, top_k=100, words_per_image=600,
                         asmk_full_max_images=100_000, asmk_words_large=60, skip_global=False,
                         skip_asmk=False)
    parser.add_argument("--nprobe", type=lambda v: [int(x) for x in v.split(",")],
                        default=[8, 32])
    parser.add_argument("--tmp_dir", default=None, help="where saved indexes are measured")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    results = {"args": vars(args), "rows": []}

    def record(num, dim, row):
        row = {"images": num, "dim": dim, **row}
        results["rows"].append(row)
        print(f"{num:>9,d} {dim!s:>6} {row['index']:<32} {row['ms_per_query']:9.2f} ms/query"
              f" (CPU {row['cpu_ms_per_query']:8.2f})"
              f"  {row['bytes_per_image']:10,.0f} B/image"
              + (f"  recall@100 {row['recall@100']:.3f}" if "recall@100" in row else "")
              + f"  build {row['build_s']:.1f} s", flush=True)

    if not args.skip_global:
        for dim in sorted({args.growth_dim, args.full_dim}):
            for num in sizes:
                if dim == args.full_dim and num > args.full_dim_max_images:
                    continue
                for row in _global_rows(args, rng, num, dim):
                    record(num, dim, row)
    if not args.skip_asmk:
        words_large = sorted({args.words_per_image, args.asmk_words_large})
        for num in sizes:
            for words in words_large:
                if words > args.asmk_words_large and num > args.asmk_full_max_images:
                    continue
                if words == args.asmk_words_large and words != args.words_per_image and \
                        num < args.asmk_full_max_images:
                    continue
                record(num, "128", _asmk_rows(args, rng, num, words))
    write_result(_RESULT, results)


if __name__ == "__main__":
    main()

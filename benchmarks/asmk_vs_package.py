"""ASMK* as HOW uses it: delf_tf vs the HOW authors' `asmk` package, per stage.

Same descriptors, same parameters (alpha 3, tau 0, queries on 5 words,
database on 1, binary residuals, no idf), in one process:
  codebook  k-means of the training descriptors: asmk runs 10 iterations of faiss's
            k-means; delf_tf train_asmk_codebook's default (--kmeans auto: at most 10
            Lloyd iterations with faiss assignment, stopped once converged, approximate
            assignment from 32768 words); the codebooks' mean squared quantization error on
            held-out descriptors (20 more images) is printed next to the times;
  build     quantize + aggregate + inverted file of the database images,
            delf_tf on the asmk-trained codebook, so both index the same words;
  query     quantize (5 words) + aggregate + inverted-file search per query;
and checks that both give the same scores (max abs difference printed).
Each stage runs --rounds times, asmk's and delf_tf's turns alternating, and the
median wall time of each side is reported (so a change of the machine's load
hits both alike).

Descriptors are synthetic but bursty like real local features: each image
shows a random subset of "object parts" (shared across images) with noise,
plus background clutter.

Usage: python benchmarks/asmk_vs_package.py [--num_words 8192] [--num_index 300]
       [--num_queries 20] [--descriptors_per_image 1000] [--kmeans auto] [--rounds 3]
Needs `pip install asmk faiss-cpu`.
"""

import os

import numpy as np
from _results import flag_parser, timed, write_result

from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.asmk_index import KMEANS_ALGORITHMS, AsmkIndex, AsmkParams, CodebookParams

_RESULT = os.path.join(os.path.dirname(__file__), "results", "asmk_vs_package.json")
_DIM = 128


def _images(rng, parts, num_images, per_image):
    images = []
    for _ in range(num_images):
        num_parts = per_image * 3 // 4
        seen = parts[rng.integers(0, len(parts), size=num_parts)]
        clutter = rng.normal(size=[per_image - num_parts, _DIM])
        x = np.concatenate([seen + 0.3 * rng.normal(size=seen.shape), clutter])
        images.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return images


def _quantization_error(descriptors, codebook) -> float:
    """Mean squared distance of each descriptor to its nearest codeword."""
    import faiss

    return float(faiss.knn(descriptors, np.ascontiguousarray(codebook), 1)[0].mean())


def _alternating(fns: dict, rounds: int) -> tuple[dict[str, float], dict[str, float], dict]:
    """({side: median wall s}, {side: median CPU s}, {side: last result}) of the sides'
    functions, run in turn `rounds` times."""
    runs = {side: [] for side in fns}
    for _ in range(rounds):
        for side, fn in fns.items():
            runs[side].append(timed(fn))
    return ({side: float(np.median([r.wall for r in rs])) for side, rs in runs.items()},
            {side: float(np.median([r.cpu for r in rs])) for side, rs in runs.items()},
            {side: rs[-1].result for side, rs in runs.items()})


def main() -> None:
    parser = flag_parser(__doc__, num_words=8192, num_index=300, num_queries=20,
                         descriptors_per_image=1000, rounds=3)
    parser.add_argument("--num_train", type=int, default=100,
                        help="images whose descriptors train the codebook")
    parser.add_argument("--kmeans", default="auto", choices=KMEANS_ALGORITHMS,
                        help="delf_tf's k-means (train_asmk_codebook --kmeans)")
    args = parser.parse_args()

    from asmk import asmk_method

    rng = np.random.default_rng(0)
    parts = rng.normal(size=[4 * args.num_words, _DIM])
    train = np.concatenate(_images(rng, parts, args.num_train, args.descriptors_per_image))
    database = _images(rng, parts, args.num_index, args.descriptors_per_image)
    queries = _images(rng, parts, args.num_queries, args.descriptors_per_image)
    held_out = np.concatenate(_images(rng, parts, 20, args.descriptors_per_image))

    params = {
        "index": {"gpu_id": None},
        "train_codebook": {"codebook": {"size": args.num_words}},
        "build_ivf": {"kernel": {"binary": True}, "ivf": {"use_idf": False},
                      "quantize": {"multiple_assignment": 1}, "aggregate": {}},
        "query_ivf": {"quantize": {"multiple_assignment": 5}, "aggregate": {},
                      "search": {"topk": None},
                      "similarity": {"similarity_threshold": 0.0, "alpha": 3}},
    }
    times = {"theirs": {}, "ours": {}}
    cpu_times = {"theirs": {}, "ours": {}}

    def record(stage, walls, cpus):
        for side in walls:
            times[side][stage], cpu_times[side][stage] = walls[side], cpus[side]

    # Codebook.
    algorithm = CodebookParams(num_words=args.num_words, kmeans=args.kmeans).algorithm()
    walls, cpus, codebooks = _alternating({
        "theirs": lambda: asmk_method.ASMKMethod.initialize_untrained(params).train_codebook(train),
        "ours": lambda: codebook_lib.TrainCodebook(train, args.num_words, 10,
                                                   algorithm=algorithm)}, args.rounds)
    record("codebook", walls, cpus)
    theirs = codebooks["theirs"]
    codebook = theirs.codebook.centroids
    quantization_error = {"theirs": _quantization_error(held_out, codebook),
                          "ours": _quantization_error(held_out, codebooks["ours"])}

    # Build (delf_tf on the asmk-trained codebook, so both index the same words).
    vectors = np.concatenate(database)
    image_ids = np.repeat(np.arange(len(database)), [len(d) for d in database])
    walls, cpus, built = _alternating({
        "theirs": lambda: theirs.build_ivf(vectors, image_ids),
        "ours": lambda: AsmkIndex(codebook, AsmkParams()).Build(database)}, args.rounds)
    record("build", walls, cpus)
    theirs, ours = built["theirs"], built["ours"]

    # Query (per query).
    query_vectors = np.concatenate(queries)
    query_ids = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
    walls, cpus, answers = _alternating({
        "theirs": lambda: theirs.query_ivf(query_vectors, query_ids),
        "ours": lambda: np.stack([ours.ComputeSimilarities(q) for q in queries])}, args.rounds)
    record("query", {k: v / len(queries) for k, v in walls.items()},
           {k: v / len(queries) for k, v in cpus.items()})
    _, _, their_ranks, their_sorted = answers["theirs"]
    our_scores = answers["ours"]
    their_scores = np.zeros(their_sorted.shape)
    np.put_along_axis(their_scores, their_ranks, their_sorted, axis=1)
    max_difference = float(np.abs(their_scores - our_scores).max())

    ratios = {stage: times["ours"][stage] / times["theirs"][stage] for stage in times["ours"]}
    result = {
        "args": vars(args),
        "seconds": times,
        "ours_over_theirs": ratios,
        "cpu_seconds": cpu_times,
        "codebook_algorithm": algorithm,
        "held_out_quantization_error": quantization_error,
        "max_abs_score_difference": max_difference,
        "vectors_per_image": ours.Stats()["vectors_per_image"],
        "their_vectors_per_image": float(theirs.inverted_file.stats["vectors_per_image"]),
        "bytes_per_image": ours.Stats()["bytes_per_image"],
    }
    write_result(_RESULT, result, indent=1, announce=False)
    for stage in ratios:
        print(f"{stage:9s} ours {times['ours'][stage]:8.3f} s  asmk {times['theirs'][stage]:8.3f} s"
              f"  ratio {ratios[stage]:.3f}")
    print(f"medians of {args.rounds} alternating rounds; codebook ({algorithm}): CPU ours "
          f"{cpu_times['ours']['codebook']:.1f} s, asmk "
          f"{cpu_times['theirs']['codebook']:.1f} s; held-out mean squared quantization error "
          f"ours {quantization_error['ours']:.5f}, asmk {quantization_error['theirs']:.5f}")
    print(f"query times are per query; max |score difference| {max_difference:.2e}; "
          f"{result['vectors_per_image']:.1f} vectors per image (asmk "
          f"{result['their_vectors_per_image']:.1f})")


if __name__ == "__main__":
    main()

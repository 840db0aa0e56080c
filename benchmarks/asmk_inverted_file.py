"""ASMK* speed: inverted-file search vs pairwise comparison, and word assignment.

Times, in one process:
  search     one query against N index images: AsmkInvertedFile.ComputeSimilarities
             vs the original's way, SimilarityAggregatedRepresentation.ComputeSimilarity
             called for every index image; checks both give the same scores;
  assignment nearest-word assignment of 1000 128-D features to a 65536-word
             codebook: ours (batched matrix products, feature_batch_size 100 and
             1000) vs scipy.cluster.vq.vq; checks both pick the same words.

Index images are synthetic ASMK* representations: ~600 visual words per image
drawn from a skewed (Zipf-like) word distribution, random packed residual bits.

Usage: .venv/bin/python benchmarks/asmk_inverted_file.py [--num_index 5000]
       [--num_queries 10] [--words_per_image 600]
"""

import os

import numpy as np
from _results import flag_parser, timed, write_result
from scipy.cluster import vq

from delf_tf.aggregation import functional
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.similarity import SimilarityAggregatedRepresentation
from delf_tf.protos import aggregation_config_pb2

_RESULT = os.path.join(os.path.dirname(__file__), "results", "asmk_inverted_file.json")
_NUM_WORDS = 65536
_DIM = 128


def _representation(rng, word_probabilities, words_per_image):
    words = np.unique(rng.choice(_NUM_WORDS, words_per_image, p=word_probabilities))
    codes = rng.integers(0, 256, size=[len(words), _DIM // 8], dtype=np.uint8)
    return codes.reshape(-1), words.astype(np.int32)


def main() -> None:
    parser = flag_parser(__doc__, num_index=5000, num_queries=10, words_per_image=600, repeats=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    word_probabilities = 1.0 / (np.arange(_NUM_WORDS) + 50.0) ** 0.8
    word_probabilities /= word_probabilities.sum()
    config = aggregation_config_pb2.AggregationConfig(
        codebook_size=_NUM_WORDS, feature_dimensionality=_DIM,
        aggregation_type=aggregation_config_pb2.AggregationConfig.ASMK_STAR)
    index = [_representation(rng, word_probabilities, args.words_per_image)
             for _ in range(args.num_index)]
    queries = [_representation(rng, word_probabilities, args.words_per_image)
               for _ in range(args.num_queries)]

    build = timed(lambda: AsmkInvertedFile(config).Build([d for d, _ in index],
                                                         [w for _, w in index]))
    inverted_file, build_seconds = build.result, build.wall
    similarity = SimilarityAggregatedRepresentation(config)

    def inverted_search():
        return [inverted_file.ComputeSimilarities(d, w) for d, w in queries]

    def pairwise_search():
        return [np.array([similarity.ComputeSimilarity(qd, d, qw, w) for d, w in index])
                for qd, qw in queries]

    max_difference = max(np.abs(a - b).max()
                         for a, b in zip(inverted_search(), pairwise_search()))
    inverted_seconds = timed(inverted_search, args.repeats).wall / args.num_queries
    pairwise_seconds = timed(pairwise_search).wall / args.num_queries

    features = rng.normal(size=[1000, _DIM]).astype(np.float32)
    codebook = rng.normal(size=[_NUM_WORDS, _DIM]).astype(np.float32)
    ours = {}
    for batch_size in (100, 1000):
        ours[batch_size] = timed(
            lambda b=batch_size: functional.assign(features, codebook, 1, b), args.repeats).wall
    words = functional.assign(features, codebook, 1, 100)[:, 0]
    scipy = timed(lambda: vq.vq(features, codebook, check_finite=False))
    (scipy_words, _), scipy_seconds = scipy.result, scipy.wall

    result = {
        "num_index": args.num_index,
        "num_queries": args.num_queries,
        "mean_words_per_image": float(np.mean([len(w) for _, w in index])),
        "index_entries": inverted_file.num_entries,
        "asmk_star_bytes_per_image_in_memory": float(
            np.mean([d.nbytes + w.nbytes for d, w in index])),
        "inverted_file_build_seconds": build_seconds,
        "inverted_seconds_per_query": inverted_seconds,
        "pairwise_seconds_per_query": pairwise_seconds,
        "search_speedup": pairwise_seconds / inverted_seconds,
        "search_max_score_difference": float(max_difference),
        "assign_seconds_batch100": ours[100],
        "assign_seconds_batch1000": ours[1000],
        "scipy_vq_seconds": scipy_seconds,
        "assign_speedup_batch100": scipy_seconds / ours[100],
        "assign_agreement": float(np.mean(words == scipy_words)),
    }
    print(f"index: {args.num_index} images, {result['mean_words_per_image']:.0f} words each, "
          f"{inverted_file.num_entries} entries, built in {build_seconds:.2f} s")
    print(f"search per query: inverted file {1000 * inverted_seconds:.1f} ms, pairwise "
          f"{1000 * pairwise_seconds:.1f} ms -> {result['search_speedup']:.1f}x "
          f"(max score difference {max_difference:.2e})")
    print(f"assignment of 1000 x {_DIM} to {_NUM_WORDS} words: ours {ours[100]:.3f} s "
          f"(batch 100), {ours[1000]:.3f} s (batch 1000); scipy vq {scipy_seconds:.3f} s -> "
          f"{result['assign_speedup_batch100']:.1f}x, agreement {result['assign_agreement']:.4f}")
    write_result(_RESULT, result)


if __name__ == "__main__":
    main()

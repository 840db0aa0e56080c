"""Geometric-verification re-ranking speed: ours vs the original algorithm.

One query (1000 local features, 128-D) is verified against 100 candidate index
images (1000 features each), in one process:
  ours      reranking.verify_candidates: nearest neighbours by batched matrix
            products + the default 'numpy' affine RANSAC (the original's
            scikit-image algorithm and samples, vectorized; 1000 trials,
            seeded); descriptor preparation included;
  original  per candidate a SciPy cKDTree built on the index descriptors,
            queried with distance_upper_bound (workers=-1, the original's
            n_jobs=-1), then skimage.measure.ransac with AffineTransform,
            min_samples 3, 1000 trials (the original's MatchFeatures);
and reports the ratio of per-query seconds, the agreement of the putative
matches (must be identical) and of the inlier counts (fraction of pairs within
one inlier of the original's), and the agreement of the re-ranked order, for
the default backend and for the OpenCV backend (different random samples, so
its counts agree only statistically). Also times ours with the scikit-image
backend (parity mode) and the cost of
reading 100 feature files from disk (the same for both; cached across queries
by perform_retrieval).

Synthetic but DELG-like data, DELG retrieval settings (matching threshold 1.0,
residual 20 px): unit-norm descriptors; each candidate shares 0-200 true
correspondences with the query under a random affine map (2 px location
noise; descriptor noise 0.05 per dimension), has 30-150 false matches
(similar descriptor, random place) and random features for the rest.

Usage: .venv/bin/python benchmarks/rerank.py [--num_candidates 100]
       [--num_features 1000] [--repeats 3] [--output results/rerank.json]

On a shared, oversubscribed machine OpenBLAS's spinning worker threads make
our matrix products several times slower; OPENBLAS_NUM_THREADS=1 then gives
the truer figure (the setting and the load average are recorded in the JSON).
"""

import os
import platform
import tempfile
import warnings

import numpy as np
from _results import flag_parser, timed, write_result
from scipy import spatial, stats
from skimage import measure, transform

from delf_tf.io import feature_io
from delf_tf.matching import ransac, reranking

_RESULT = os.path.join(os.path.dirname(__file__), "results", "rerank.json")
_THRESHOLD = 1.0
_RESIDUAL = 20.0
_TRIALS = 1000
_SEED = 0


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _make_data(rng, num_candidates, num_features, dim):
    query_locations = rng.uniform(0, 1024, size=(num_features, 2))
    query_descriptors = _unit(rng.normal(size=(num_features, dim)))
    candidates = []
    for _ in range(num_candidates):
        num_true = int(rng.choice([0, 0, 5, 10, 20, 40, 80, 120, 200]))
        num_false = int(rng.integers(30, 150))
        linear = np.eye(2) * rng.uniform(0.6, 1.4) + rng.normal(scale=0.15, size=(2, 2))
        shift = rng.uniform(-200, 200, size=2)
        ids = rng.choice(num_features, num_true + num_false, replace=False)
        true_ids = ids[:num_true]
        num_random = num_features - num_true - num_false
        locations = np.concatenate([
            query_locations[true_ids] @ linear.T + shift
            + rng.normal(scale=2.0, size=(num_true, 2)),
            rng.uniform(0, 1024, size=(num_false + num_random, 2))])
        descriptors = np.concatenate([
            _unit(query_descriptors[ids] + 0.05 * rng.normal(size=(len(ids), dim))),
            _unit(rng.normal(size=(num_random, dim)))])
        order = rng.permutation(num_features)
        candidates.append((locations[order], descriptors[order].astype(np.float32)))
    return query_locations, query_descriptors.astype(np.float32), candidates


def _original_match(query_locations, query_descriptors, locations, descriptors):
    """The original MatchFeatures: KD-tree + skimage RANSAC."""
    tree = spatial.cKDTree(descriptors)
    _, indices = tree.query(query_descriptors, distance_upper_bound=_THRESHOLD, workers=-1)
    keep = indices != len(descriptors)
    query_ids = np.flatnonzero(keep)
    if len(query_ids) <= 3:
        return query_ids, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, inliers = measure.ransac(
            (locations[indices[keep]], query_locations[keep]), transform.AffineTransform,
            min_samples=3, residual_threshold=_RESIDUAL, max_trials=_TRIALS, rng=_SEED)
    return query_ids, 0 if inliers is None else int(np.sum(inliers))


def _ours(query_locations, query_descriptors, candidates, backend=ransac.DEFAULT_BACKEND):
    query = reranking.LocalFeatures.from_arrays(query_locations, query_descriptors)
    prepared = [reranking.LocalFeatures.from_arrays(loc, d) for loc, d in candidates]
    return reranking.verify_candidates(query, prepared, _THRESHOLD, _RESIDUAL,
                                       ransac_seed=_SEED, backend=backend)


def main() -> None:
    parser = flag_parser(__doc__, num_candidates=100, num_features=1000, dim=128,
                         skip_skimage_backend=False)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (min is kept)")
    parser.add_argument("--baseline_repeats", type=int, default=1,
                        help="runs of the original algorithm (slow)")
    parser.add_argument("--output", default=_RESULT, help="JSON result path")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    query_locations, query_descriptors, candidates = _make_data(
        rng, args.num_candidates, args.num_features, args.dim)
    scores = rng.uniform(size=args.num_candidates)  # global scores of the candidates

    run = timed(lambda: _ours(query_locations, query_descriptors, candidates), args.repeats)
    ours, ours_times = run.result, run.walls
    print(f"ours ({ransac.DEFAULT_BACKEND}):    {min(ours_times):.3f} s/query (runs: "
          f"{', '.join(f'{t:.3f}' for t in ours_times)})", flush=True)
    run = timed(lambda: _ours(query_locations, query_descriptors, candidates, "opencv"),
                args.repeats)
    opencv, opencv_times = run.result, run.walls
    print(f"ours (opencv):   {min(opencv_times):.3f} s/query", flush=True)

    def original():
        return [_original_match(query_locations, query_descriptors, loc, d)
                for loc, d in candidates]
    run = timed(original, args.baseline_repeats)
    baseline, baseline_times = run.result, run.walls
    baseline_inliers = np.array([n for _, n in baseline])
    print(f"original:        {min(baseline_times):.3f} s/query", flush=True)

    skimage_seconds = None
    if not args.skip_skimage_backend:
        skimage_seconds = timed(
            lambda: _ours(query_locations, query_descriptors, candidates, "skimage")).wall
        print(f"ours (skimage):  {skimage_seconds:.3f} s/query", flush=True)

    # Putative matches must be identical (same nearest neighbours).
    query = reranking.LocalFeatures.from_arrays(query_locations, query_descriptors)
    same_matches = all(
        np.array_equal(reranking.verify_pair(
            query, reranking.LocalFeatures.from_arrays(loc, d), _THRESHOLD,
            _RESIDUAL, ransac_seed=_SEED).query_ids, query_ids)
        for (loc, d), (query_ids, _) in zip(candidates, baseline))

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (loc, d) in enumerate(candidates):
            paths.append(os.path.join(tmp, f"{i}.delg_local"))
            feature_io.WriteToFile(paths[-1], loc, np.ones(len(loc)), d, np.ones(len(loc)))
        read_seconds = timed(lambda: [reranking.read_local_features(p) for p in paths]).wall

    def agreement_of(inliers):
        difference = np.abs(inliers - baseline_inliers)
        order = reranking.rerank_by_inliers(np.argsort(-scores), scores, inliers)
        return {"within_one_inlier_fraction": float(np.mean(difference <= 1)),
                "exact_equal_fraction": float(np.mean(difference == 0)),
                "mean_difference": float(np.mean(inliers - baseline_inliers)),
                "max_abs_difference": int(difference.max()),
                "same_reranked_order": bool(np.array_equal(order, order_base))}

    difference = np.abs(ours - baseline_inliers)
    verified = baseline_inliers >= 10
    order_ours = reranking.rerank_by_inliers(np.argsort(-scores), scores, ours)
    order_base = reranking.rerank_by_inliers(np.argsort(-scores), scores, baseline_inliers)
    by_backend = {ransac.DEFAULT_BACKEND: agreement_of(ours), "opencv": agreement_of(opencv)}
    result = {
        "config": {"num_candidates": args.num_candidates, "num_features": args.num_features,
                   "dim": args.dim, "ransac_trials": _TRIALS,
                   "matching_threshold": _THRESHOLD, "residual_threshold": _RESIDUAL},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg(),
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "default_backend": ransac.DEFAULT_BACKEND,
        "seconds_per_query": {"ours": min(ours_times), "ours_opencv": min(opencv_times),
                              "original_kdtree_skimage": min(baseline_times),
                              "ours_skimage_backend": skimage_seconds,
                              "reading_100_feature_files": read_seconds},
        "runs": {"ours": ours_times, "ours_opencv": opencv_times,
                 "original_kdtree_skimage": baseline_times},
        "speedup_opencv_backend": min(baseline_times) / min(opencv_times),
        "inlier_agreement_by_backend": by_backend,
        "speedup": min(baseline_times) / min(ours_times),
        "speedup_skimage_backend": (min(baseline_times) / skimage_seconds
                                    if skimage_seconds else None),
        "agreement": {
            "identical_putative_matches": bool(same_matches),
            "inliers_ours": ours.tolist(),
            "inliers_original": baseline_inliers.tolist(),
            "exact_equal_fraction": float(np.mean(difference == 0)),
            "mean_abs_difference": float(difference.mean()),
            "max_abs_difference": int(difference.max()),
            "max_relative_difference_when_verified_(>=10)": float(
                (difference[verified] / baseline_inliers[verified]).max()
                if verified.any() else 0.0),
            "spearman": float(stats.spearmanr(ours, baseline_inliers).statistic),
            "same_top10_after_rerank": bool(np.array_equal(order_ours[:10], order_base[:10])),
            "kendall_tau_of_reranked_order": float(
                stats.kendalltau(np.argsort(order_ours), np.argsort(order_base)).statistic),
        },
    }
    write_result(args.output, result, announce=False)
    agreement = result["agreement"]
    print(f"speedup: {result['speedup']:.1f}x (target >= 50x); opencv backend "
          f"{result['speedup_opencv_backend']:.1f}x")
    for backend, figures in by_backend.items():
        print(f"  {backend}: inlier counts within one of the original's for "
              f"{100 * figures['within_one_inlier_fraction']:.0f}% of pairs (equal "
              f"{100 * figures['exact_equal_fraction']:.0f}%, mean diff "
              f"{figures['mean_difference']:+.2f}, max {figures['max_abs_difference']}), same "
              f"re-ranked order: {figures['same_reranked_order']}")
    print(f"putative matches identical: {agreement['identical_putative_matches']}; inlier "
          f"counts equal for {100 * agreement['exact_equal_fraction']:.0f}% of candidates, "
          f"mean |diff| {agreement['mean_abs_difference']:.2f}, spearman "
          f"{agreement['spearman']:.4f}, same top-10 after re-ranking: "
          f"{agreement['same_top10_after_rerank']}")
    print(f"reading 100 feature files: {read_seconds:.3f} s (same for both; cached across "
          f"queries by perform_retrieval)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

r"""Retrieval on Revisited Oxford/Paris with DELG features, optionally re-ranked
by geometric verification; writes metrics.txt and the rankings.

Reads `<query_features_dir>/<query>.delg_global` and `.delg_local` (and the
same for index images; see tools/extract_delg_features.py), ranks the index by
global-descriptor similarity and, with --use_geometric_verification, re-ranks
the top 100 non-junk images of each query by RANSAC inliers of local-feature
matches. Prints a table of mAP and mP@k per protocol (medium, hard) before and
after verification. All input files are checked before the work starts.

Example:
  python tools/perform_retrieval.py --dataset_file_path=gnd_roxford5k.mat \
      --query_features_dir=features/query --index_features_dir=features/index \
      --use_geometric_verification --output_dir=results/roxford
"""

from absl import app, flags

from delf_tf.matching import ransac, reranking
from delf_tf.matching.params import VerificationParams
from delf_tf.retrieval import evaluation
from delf_tf.tools import common

flags.DEFINE_string("dataset_file_path", "/tmp/gnd_roxford5k.mat",
                    "Ground-truth .mat file of the Revisited dataset (gnd_roxford5k.mat, "
                    "gnd_rparis6k.mat).")
flags.DEFINE_string("query_features_dir", "/tmp/features/query",
                    "Directory of the query <name>.delg_global / .delg_local files.")
flags.DEFINE_string("index_features_dir", "/tmp/features/index",
                    "Directory of the index <name>.delg_global / .delg_local files.")
flags.DEFINE_boolean("use_geometric_verification", False,
                     "Re-rank the global ranking by local-feature geometric verification.")
flags.DEFINE_float("local_descriptor_matching_threshold", 1.0,
                   "Max descriptor distance of a putative local match (binarized "
                   "descriptors: 2*sqrt(hamming/bits)).")
flags.DEFINE_float("ransac_residual_threshold", 20.0,
                   "Max transfer error in pixels of a RANSAC inlier.")
flags.DEFINE_boolean("use_ratio_test", False,
                     "Keep a local match if d1 < threshold * d2 instead of d1 < threshold.")
flags.DEFINE_string("output_dir", "/tmp/retrieval",
                    "Directory for metrics.txt and the rankings (.npy).")
flags.DEFINE_integer("num_to_rerank", reranking.DEFAULT_NUM_TO_RERANK,
                     "Number of top non-junk images re-ranked per query.")
flags.DEFINE_enum("ransac_backend", ransac.DEFAULT_BACKEND, list(ransac.BACKENDS),
                  "RANSAC implementation (addition to the original): numpy (the original's "
                  "scikit-image algorithm and random samples, vectorized: same inliers, a few "
                  "ms per pair), opencv (fastest; same statistics, different samples) or "
                  "skimage (the original's code, ~0.3 s per pair).")
flags.DEFINE_integer("ransac_seed", 0, "Seed of RANSAC (results are reproducible).")
flags.DEFINE_integer("ransac_max_trials", ransac.DEFAULT_MAX_TRIALS,
                     "Number of random 3-point RANSAC samples per verified pair.")
flags.DEFINE_integer("feature_cache_size", 512,
                     "Index images whose local features are kept in memory (~1 MB each).")

FLAGS = flags.FLAGS


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        verification = VerificationParams(
            descriptor_matching_threshold=FLAGS.local_descriptor_matching_threshold,
            ransac_residual_threshold=FLAGS.ransac_residual_threshold,
            use_ratio_test=FLAGS.use_ratio_test, ransac_seed=FLAGS.ransac_seed,
            max_trials=FLAGS.ransac_max_trials, ransac_backend=FLAGS.ransac_backend)
        evaluation.evaluate_revisited(
            FLAGS.dataset_file_path, FLAGS.query_features_dir, FLAGS.index_features_dir,
            FLAGS.output_dir, use_geometric_verification=FLAGS.use_geometric_verification,
            verification=verification, num_to_rerank=FLAGS.num_to_rerank,
            feature_cache_size=FLAGS.feature_cache_size)


if __name__ == "__main__":
    app.run(main)

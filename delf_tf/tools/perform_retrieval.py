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

from delf_tf.matching import reranking
from delf_tf.retrieval import evaluation
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_evaluation_flags(
    files="<name>.delg_global / .delg_local files", query_features_dir="/tmp/features/query",
    index_features_dir="/tmp/features/index", output_dir="/tmp/retrieval")
_USE_GEOMETRIC_VERIFICATION = flags.DEFINE_boolean(
    "use_geometric_verification", False,
    "Re-rank the global ranking by local-feature geometric verification.")
_VERIFICATION = retrieval_flags.define_verification_flags(
    threshold_name="local_descriptor_matching_threshold", descriptor_matching_threshold=1.0,
    ransac_residual_threshold=20.0)
_NUM_TO_RERANK = flags.DEFINE_integer(
    "num_to_rerank", reranking.DEFAULT_NUM_TO_RERANK,
    "Number of top non-junk images re-ranked per query.")
_FEATURE_CACHE_SIZE = flags.DEFINE_integer(
    "feature_cache_size", 512,
    "Most index images whose local features are kept in memory (~1 MB each); each file is "
    "read once per run when the images later queries still need fit.")


@common.tool_main
def main():
    evaluation.evaluate_revisited(
        _FILES.dataset_file_path.value, _FILES.query_features_dir.value,
        _FILES.index_features_dir.value, _FILES.output_dir.value,
        use_geometric_verification=_USE_GEOMETRIC_VERIFICATION.value,
        verification=_VERIFICATION.params(), num_to_rerank=_NUM_TO_RERANK.value,
        feature_cache_size=_FEATURE_CACHE_SIZE.value)


if __name__ == "__main__":
    app.run(main)

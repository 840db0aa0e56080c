r"""Retrieval with aggregated local features (ASMK*, ASMK or VLAD) on a
Revisited-format dataset (Detect-to-Retrieve's perform_retrieval).

Representations are read from --query/index_aggregation_dir (written by
extract_aggregation.py) when given, otherwise computed from the local feature
files in --query/index_features_dir. Writes `<output_dir>/metrics.txt` (the
format of perform_retrieval.py) and `<output_dir>/ranks.npy`.

Example:
  python tools/perform_aggregated_retrieval.py --dataset_file_path=gnd_roxford5k.mat \
    --query_features_dir=features/query --index_features_dir=features/index \
    --query_aggregation_config_path=configs/query_aggregation_config.pbtxt \
    --index_aggregation_config_path=configs/index_aggregation_config.pbtxt \
    --output_dir=results/asmk_star
"""

from absl import app, flags

from delf_tf.aggregation import retrieval
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_evaluation_flags(
    files="local feature files (read when its --*_aggregation_dir is empty)",
    query_features_dir="", index_features_dir="", output_dir="/tmp/retrieval")


def _define_side(side: str, whose: str) -> tuple[flags.FlagHolder, flags.FlagHolder]:
    """--<side>_aggregation_config_path and --<side>_aggregation_dir."""
    return (flags.DEFINE_string(
                f"{side}_aggregation_config_path", f"/tmp/{side}_aggregation_config.pbtxt",
                f"Path to the AggregationConfig pbtxt of {whose}."),
            flags.DEFINE_string(
                f"{side}_aggregation_dir", "",
                f"Directory of {whose}' aggregated representations from "
                "extract_aggregation.py."))


_QUERY_AGGREGATION_CONFIG_PATH, _QUERY_AGGREGATION_DIR = _define_side("query", "the queries")
_INDEX_AGGREGATION_CONFIG_PATH, _INDEX_AGGREGATION_DIR = _define_side("index",
                                                                      "the index images")
_FEATURE_EXTENSION = flags.DEFINE_string(
    "feature_extension", ".delg_local",
    "Extension of the local feature files (.delg_local for DELG, .delf for DELF).")
_INDEX_MAPPING_PATH = flags.DEFINE_string(
    "index_mapping_path", "",
    "Optional region mapping CSV (name,index_image_id,box_id) for regional aggregation of "
    "index features; without it an index image is one region.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        retrieval.PerformAggregatedRetrieval(
            _FILES.dataset_file_path.value, _QUERY_AGGREGATION_CONFIG_PATH.value,
            _INDEX_AGGREGATION_CONFIG_PATH.value, _FILES.output_dir.value,
            query_features_dir=_FILES.query_features_dir.value,
            index_features_dir=_FILES.index_features_dir.value,
            query_aggregation_dir=_QUERY_AGGREGATION_DIR.value,
            index_aggregation_dir=_INDEX_AGGREGATION_DIR.value,
            feature_extension=_FEATURE_EXTENSION.value,
            index_mapping_path=_INDEX_MAPPING_PATH.value)


if __name__ == "__main__":
    app.run(main)

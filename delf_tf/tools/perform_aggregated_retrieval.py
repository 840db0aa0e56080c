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
from delf_tf.tools import common

_DATASET_FILE_PATH = flags.DEFINE_string(
    "dataset_file_path", "/tmp/gnd_roxford5k.mat",
    "Dataset file for Revisited Oxford or Paris dataset, in .mat format.")
_QUERY_AGGREGATION_CONFIG_PATH = flags.DEFINE_string(
    "query_aggregation_config_path", "/tmp/query_aggregation_config.pbtxt",
    "Path to the AggregationConfig pbtxt of the queries.")
_INDEX_AGGREGATION_CONFIG_PATH = flags.DEFINE_string(
    "index_aggregation_config_path", "/tmp/index_aggregation_config.pbtxt",
    "Path to the AggregationConfig pbtxt of the index images.")
_QUERY_FEATURES_DIR = flags.DEFINE_string(
    "query_features_dir", "",
    "Directory of the queries' local feature files (used if query_aggregation_dir is empty).")
_INDEX_FEATURES_DIR = flags.DEFINE_string(
    "index_features_dir", "",
    "Directory of the index images' local feature files (used if index_aggregation_dir is "
    "empty).")
_QUERY_AGGREGATION_DIR = flags.DEFINE_string(
    "query_aggregation_dir", "",
    "Directory of the queries' aggregated representations from extract_aggregation.py.")
_INDEX_AGGREGATION_DIR = flags.DEFINE_string(
    "index_aggregation_dir", "",
    "Directory of the index images' aggregated representations from extract_aggregation.py.")
_FEATURE_EXTENSION = flags.DEFINE_string(
    "feature_extension", ".delg_local",
    "Extension of the local feature files (.delg_local for DELG, .delf for DELF).")
_INDEX_MAPPING_PATH = flags.DEFINE_string(
    "index_mapping_path", "",
    "Optional region mapping CSV (name,index_image_id,box_id) for regional aggregation of "
    "index features; without it an index image is one region.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "/tmp/retrieval", "Directory where retrieval metrics and ranks are written.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors(OSError):
        retrieval.PerformAggregatedRetrieval(
            _DATASET_FILE_PATH.value, _QUERY_AGGREGATION_CONFIG_PATH.value,
            _INDEX_AGGREGATION_CONFIG_PATH.value, _OUTPUT_DIR.value,
            query_features_dir=_QUERY_FEATURES_DIR.value,
            index_features_dir=_INDEX_FEATURES_DIR.value,
            query_aggregation_dir=_QUERY_AGGREGATION_DIR.value,
            index_aggregation_dir=_INDEX_AGGREGATION_DIR.value,
            feature_extension=_FEATURE_EXTENSION.value,
            index_mapping_path=_INDEX_MAPPING_PATH.value)


if __name__ == "__main__":
    app.run(main)

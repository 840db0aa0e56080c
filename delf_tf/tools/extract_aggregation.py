r"""Extracts aggregated representations (VLAD, ASMK, ASMK* or their regional
variants) of the images of a Revisited-format dataset from their local
features (the original's extract_aggregation).

Writes `<output_aggregation_dir>/<image name><ext>` DatumPairProto files, ext
one of .vlad .asmk .asmk_star .rvlad .rasmk .rasmk_star.

Example:
  python tools/extract_aggregation.py --dataset_file_path=gnd_roxford5k.mat \
    --features_dir=features --feature_extension=.delg_local \
    --aggregation_config_path=configs/index_aggregation_config.pbtxt \
    --output_aggregation_dir=aggregation/index
"""

from absl import app, flags

from delf_tf.aggregation import aggregation_extraction
from delf_tf.retrieval import dataset
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    dataset_file_path="/tmp/gnd_roxford5k.mat", image_set=None, list_file=False,
    features_dir="/tmp/features")
_USE_QUERY_IMAGES = flags.DEFINE_boolean(
    "use_query_images", False,
    "If True, processes the query images of the dataset; otherwise the index images.")
_AGGREGATION_CONFIG_PATH = flags.DEFINE_string(
    "aggregation_config_path", "/tmp/aggregation_config.pbtxt",
    "Path to the AggregationConfig pbtxt to use.")
_OUTPUT_AGGREGATION_DIR = flags.DEFINE_string(
    "output_aggregation_dir", "/tmp/aggregation",
    "Directory where the aggregated representations are written.")
_INDEX_MAPPING_PATH = flags.DEFINE_string(
    "index_mapping_path", "",
    "Optional CSV (columns name,index_image_id,box_id) naming the region feature files of "
    "each image, for regional aggregation; without it an image is one region. Ignored "
    "without use_regional_aggregation in the config.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        query_list, index_list, _ = dataset.ReadDatasetFile(_IMAGES.dataset_file_path.value)
        aggregation_extraction.ExtractAggregatedRepresentationsToFiles(
            query_list if _USE_QUERY_IMAGES.value else index_list, _IMAGES.features_dir.value,
            _AGGREGATION_CONFIG_PATH.value, _INDEX_MAPPING_PATH.value,
            _OUTPUT_AGGREGATION_DIR.value, _IMAGES.feature_extension.value)


if __name__ == "__main__":
    app.run(main)

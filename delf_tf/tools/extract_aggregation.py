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

from absl import app

from delf_tf.aggregation import aggregation_extraction
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    dataset_file_path="/tmp/gnd_roxford5k.mat", image_set=None, list_file=False,
    features_dir="/tmp/features")
# One flag per DatasetAggregationParams field: its name, type, default and help (the class
# docstring).
_PARAMS = config_flags.define_config_flags(aggregation_extraction.DatasetAggregationParams)


@common.tool_main
def main():
    aggregation_extraction.ExtractDatasetAggregation(
        _IMAGES.dataset_file_path.value, _IMAGES.features_dir.value, _PARAMS.config(),
        _IMAGES.feature_extension.value)


if __name__ == "__main__":
    app.run(main)

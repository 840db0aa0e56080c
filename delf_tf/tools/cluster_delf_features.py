r"""Trains a visual-word codebook by k-means over local features of the index
images of a Revisited-format dataset (the original's cluster_delf_features).

Writes `<output_cluster_dir>/codebook.datum` (a DatumProto float [K, D]) for
AggregationConfig.codebook_path.

Example:
  python tools/cluster_delf_features.py --dataset_file_path=gnd_roxford5k.mat \
    --features_dir=features --feature_extension=.delg_local \
    --num_clusters=1024 --output_cluster_dir=parameters/k1024_codebook
"""

from absl import app, flags

from delf_tf.aggregation import codebook
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    dataset_file_path="/tmp/gnd_roxford5k.mat", image_set=None, list_file=False,
    features_dir="/tmp/features")
_OUTPUT_CLUSTER_DIR = flags.DEFINE_string(
    "output_cluster_dir", "/tmp/clusters",
    "Directory where the codebook (codebook.datum) is written.")
# One flag per ClusteringParams field: its name, type, default and help (the class docstring).
_PARAMS = config_flags.define_config_flags(codebook.ClusteringParams)


@common.tool_main
def main():
    codebook.cluster_dataset_features(
        _IMAGES.dataset_file_path.value, _IMAGES.features_dir.value,
        _OUTPUT_CLUSTER_DIR.value, _PARAMS.config(), _IMAGES.feature_extension.value)


if __name__ == "__main__":
    app.run(main)

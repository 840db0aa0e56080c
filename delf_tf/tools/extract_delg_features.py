"""Extracts DELG global and local features for a Revisited Oxford/Paris image set.

For each query (cropped to its ground-truth box, with the size limits scaled by
max(crop size) / max(image size)) or index image `<images_dir>/<name>.jpg`,
writes `<name>.delg_global` (DatumProto) and `<name>.delg_local` (DelfFeatures)
into --output_features_dir, as the config enables. Existing outputs are skipped
(--overwrite replaces them); an image that fails is logged and listed at the end
(exit status 1), the others are still written.

  python tools/extract_delg_features.py \\
      --delf_config_path=configs/r50delg_gld_config.pbtxt \\
      --dataset_file_path=gnd_roxford5k.mat --images_dir=roxford5k/jpg \\
      --image_set=query --output_features_dir=features/roxford5k/query
"""

from absl import app, flags

from delf_tf.extraction import batch
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_DELF_CONFIG_PATH = flags.DEFINE_string(
    "delf_config_path", "/tmp/delf_config_example.pbtxt",
    "Path to the DelfConfig pbtxt of the DELG model.")
_IMAGES = extraction_flags.define_revisited_set_flags(
    "/tmp/features", "<name>.delg_global and <name>.delg_local.")
_BINARIZE_LOCAL_DESCRIPTORS = flags.DEFINE_boolean(
    "binarize_local_descriptors", False,
    "DELG*: store local descriptors as sign bits packed into uint8.")
_SHARDS = extraction_flags.define_shard_flags()


@common.tool_main
def main():
    _SHARDS.extract_with(batch.ExtractDelgFeatures, _DELF_CONFIG_PATH.value,
                         *_IMAGES.arguments(),
                         binarize_local_descriptors=_BINARIZE_LOCAL_DESCRIPTORS.value)


if __name__ == "__main__":
    app.run(main)

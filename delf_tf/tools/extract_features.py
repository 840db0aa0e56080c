"""Extracts DELF local features for a list of images.

Reads image paths (one per line) from --list_images_path and writes
`<output_dir>/<basename>.delf` (DelfFeatures) for each; two images with the same
basename stop the tool before anything is written. Existing outputs are skipped
(--overwrite replaces them). An image that fails is logged and listed at the end
(exit status 1); the others are still written.

  python tools/extract_features.py --config_path=configs/delf_config_example.pbtxt \\
      --list_images_path=list_images.txt --output_dir=features
"""

from absl import app, flags

from delf_tf.extraction import batch
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_CONFIG_PATH = flags.DEFINE_string(
    "config_path", "delf_config_example.pbtxt",
    "Path to the DelfConfig pbtxt (model_path, scales, thresholds, PCA).")
_LIST_IMAGES_PATH = flags.DEFINE_string(
    "list_images_path", "list_images.txt",
    "Text file with one image path per line.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "test_features",
    "Directory where the .delf feature files are written.")
_SHARDS = extraction_flags.define_shard_flags()


@common.tool_main
def main():
    _SHARDS.extract_with(batch.ExtractDelfFeatures, _CONFIG_PATH.value,
                         _LIST_IMAGES_PATH.value, _OUTPUT_DIR.value)


if __name__ == "__main__":
    app.run(main)

"""Builds an ELFM search index file from per-image `.elfm` files.

The images are the index list of a Revisited dataset file (--dataset_file_path) or the
lines of --list_images_path (alias --list_path). The index file holds K * D / 8 bytes of
codes, one byte (the cluster count) and the name per image; it is written atomically.

  python tools/build_elfm_index.py --features_dir=elfm/roxford5k/index \\
      --dataset_file_path=gnd_roxford5k.mat --output_path=elfm/roxford5k.elfmidx
"""

from absl import app, flags

from delf_tf.elfm import batch
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    image_set=None, features_dir="/tmp/elfm_features/index", feature_extension=".elfm",
    extension_flag=False)
# The name this tool had before it shared the image flags of the other index tools.
flags.DEFINE_alias("list_path", "list_images_path")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "/tmp/elfm.elfmidx",
    "Index file to write.")


@common.tool_main
def main():
    index = batch.BuildElfmIndex(_IMAGES.features_dir.value, _IMAGES.names(),
                                 _OUTPUT_PATH.value)
    print(f"{len(index)} images, K={index.num_clusters}, D={index.dim}, "
          f"{index.bytes_per_image():.0f} bytes per image -> {_OUTPUT_PATH.value}")


if __name__ == "__main__":
    app.run(main)

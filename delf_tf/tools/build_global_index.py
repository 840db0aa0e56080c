r"""Builds a persistent global-descriptor index from .delg_global files: exact, or
approximate through faiss (IVF, IVF with 8-bit vectors, or HNSW). Build once, then
query many times with tools/query_global_index.py.

Images come from a Revisited dataset file (--dataset_file_path, --image_set), a list
file (--list_images_path, one name per line), or else every <name><feature_extension>
in --features_dir. Prints the index statistics (images, dimension, build time, bytes
per image on disk) as JSON.

Example:
  python tools/build_global_index.py --features_dir=features/index \
    --dataset_file_path=gnd_roxford5k.mat --kind=hnsw --output_dir=indexes/roxford5k
"""

import json
import os

from absl import app, flags

from delf_tf.retrieval import global_index
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    image_set="index", features_dir=None, feature_extension=".delg_global",
    every_file_by_default=True)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Index directory (created; an index already there is replaced).")
# One flag per GlobalIndexParams field: its name, type, default and help (the class's docstring).
_PARAMS = config_flags.define_config_flags(global_index.GlobalIndexParams,
                                           choices={"kind": global_index.KINDS})


@common.tool_main
def main():
    if not _IMAGES.features_dir.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--features_dir and --output_dir are required")
    index, stats = global_index.BuildFromFiles(
        _IMAGES.names(), _IMAGES.features_dir.value, _IMAGES.feature_extension.value,
        _PARAMS.config())
    index.Save(_OUTPUT_DIR.value)
    stats["bytes_per_image"] = index.BytesPerImage(_OUTPUT_DIR.value)
    stats["output_dir"] = os.path.abspath(_OUTPUT_DIR.value)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    app.run(main)

r"""Trains an ASMK codebook as HOW does: k-means (exact nearest-word assignment) over the
local descriptors of (at most --num_images of) the listed images.

Writes a DatumProto float [K, D] file for tools/build_asmk_index.py.

Example:
  python tools/train_asmk_codebook.py --list_images_path=train_images.txt \
    --features_dir=features/train --output_path=asmk/codebook.datum
"""

from absl import app, flags

from delf_tf.aggregation import asmk_search
from delf_tf.aggregation.asmk_index import KMEANS_ALGORITHMS, CodebookParams
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(image_set="index")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "codebook.datum",
    "Where the codebook (DatumProto float [K, D]) is written.")
# One flag per CodebookParams field but max_num_descriptors: its name, type, default and help
# (the class's docstring).
_PARAMS = config_flags.define_config_flags(CodebookParams, exclude=("max_num_descriptors",),
                                           choices={"kmeans": KMEANS_ALGORITHMS})


@common.tool_main
def main():
    codebook = asmk_search.train_codebook_from_features(
        _IMAGES.names(), _IMAGES.files(), _OUTPUT_PATH.value, _PARAMS.config())
    print(f"Wrote codebook {codebook.shape} to {_OUTPUT_PATH.value}")


if __name__ == "__main__":
    app.run(main)

r"""Builds a persistent ASMK* index (HOW's search) from local feature files:
database descriptors on their nearest visual word, residuals aggregated per
word and binarised, an inverted file with delta + variable-byte coded image
ids; codebook, parameters and image names saved in the same file. Build once,
then query many times with tools/query_asmk_index.py.

Example:
  python tools/build_asmk_index.py --dataset_file_path=gnd_roxford5k.mat \
    --features_dir=features/index --codebook_path=asmk/codebook.datum \
    --output_path=asmk/roxford5k.asmk
"""

import json

from absl import app, flags

from delf_tf.aggregation import asmk_search
from delf_tf.aggregation.asmk_index import AsmkParams
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(image_set="index")
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", "codebook.datum",
    "Codebook from tools/train_asmk_codebook.py.")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "index.asmk",
    "Where the index is written.")
# One flag per AsmkParams field: its name, type, default and help (the class's docstring).
_PARAMS = config_flags.define_config_flags(AsmkParams)


@common.tool_main
def main():
    stats = asmk_search.BuildIndexFromFeatures(
        _CODEBOOK_PATH.value, _IMAGES.names(), _IMAGES.features_dir.value,
        _IMAGES.feature_extension.value, _OUTPUT_PATH.value, _PARAMS.config())
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    app.run(main)

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
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(image_set="index")
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", "codebook.datum",
    "Codebook from tools/train_asmk_codebook.py.")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "index.asmk",
    "Where the index is written.")
_ALPHA = flags.DEFINE_float(
    "alpha", 3.0,
    "Selectivity exponent: a word pair adds u^alpha.")
_TAU = flags.DEFINE_float(
    "tau", 0.0,
    "Similarity threshold: word pairs with u <= tau add 0.")
_INDEX_NUM_ASSIGNMENTS = flags.DEFINE_integer(
    "index_num_assignments", 1,
    "Visual words per database descriptor.")
_QUERY_NUM_ASSIGNMENTS = flags.DEFINE_integer(
    "query_num_assignments", 5,
    "Visual words per query descriptor (stored in the index as the query default).")
_BINARY = flags.DEFINE_bool(
    "binary", True,
    "ASMK* (binarised residuals); --nobinary keeps float residuals (ASMK).")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        params = AsmkParams(alpha=_ALPHA.value, tau=_TAU.value,
                            query_num_assignments=_QUERY_NUM_ASSIGNMENTS.value,
                            index_num_assignments=_INDEX_NUM_ASSIGNMENTS.value,
                            binary=_BINARY.value)
        stats = asmk_search.BuildIndexFromFeatures(
            _CODEBOOK_PATH.value, _IMAGES.names(), _IMAGES.features_dir.value,
            _IMAGES.feature_extension.value, _OUTPUT_PATH.value, params)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    app.run(main)

"""Draws the ELFM local match map of an image pair (as the paper's Fig. 2) next to the
L2-norm map: rows query / target, columns image | match map | L2-norm map. The match map
shows, per location, the share of S(q, c) its cluster contributes.

  python tools/draw_elfm_match_map.py --model_path=/tmp/delg/delf_weights \\
      --query_image=q.jpg --target_image=t.jpg --output_path=match_map.png
"""

import numpy as np
from absl import app, flags

from delf_tf import utils
from delf_tf.elfm import visualization
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_MODEL = retrieval_flags.define_elfm_model_flags()
_QUERY_IMAGE = flags.DEFINE_string(
    "query_image", "",
    "Query image path.")
_TARGET_IMAGE = flags.DEFINE_string(
    "target_image", "",
    "Target (database) image path.")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "/tmp/elfm_match_map.png",
    "PNG file the picture is written to.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        extractor = _MODEL.extractor()
        query = np.asarray(utils.RgbLoader(_QUERY_IMAGE.value))
        target = np.asarray(utils.RgbLoader(_TARGET_IMAGE.value))
        score = visualization.save_match_map(extractor, query, target, _OUTPUT_PATH.value)
    print(f"S(q, c) = {score:.4f} -> {_OUTPUT_PATH.value}")


if __name__ == "__main__":
    app.run(main)

"""Draws the ELFM local match map of an image pair (as the paper's Fig. 2) next to the
L2-norm map: rows query / target, columns image | match map | L2-norm map. The match map
shows, per location, the share of S(q, c) its cluster contributes.

  python tools/draw_elfm_match_map.py --model_path=/tmp/delg/delf_weights \\
      --query_image=q.jpg --target_image=t.jpg --output_path=match_map.png
"""

from absl import app

from delf_tf.elfm import visualization
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_MODEL = retrieval_flags.define_elfm_model_flags()
# One flag per MatchMapFiles field: its name, type, default and help (the class docstring).
_FILES = config_flags.define_config_flags(visualization.MatchMapFiles)


@common.tool_main
def main():
    files = _FILES.config()
    score = visualization.DrawMatchMap(_MODEL.extractor(), files)
    print(f"S(q, c) = {score:.4f} -> {files.output_path}")


if __name__ == "__main__":
    app.run(main)

"""Exports an ELFM SavedModel from a DELG checkpoint.

The SavedModel has two functions: ExtractFeatures (serving_default; input_image uint8
[H, W, 3], input_scales float32 [S], input_max_feature_num int32 -> boxes, features (the
backbone's last feature map, all scales merged, top N by L2 norm), scales, scores (norms))
and Whiten (the model's whitening FC, float32 [k, D] -> [k, Dg]).

  python tools/export_elfm_model.py --ckpt_path=/tmp/delg/delf_weights \\
      --export_path=/tmp/elfm_export
"""

from absl import app

from delf_tf.elfm import extraction
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_EXPORT = extraction_flags.define_export_flags(
    "a trained DELG model's <logdir>/delf_weights (with its .json sidecar).",
    ckpt_path="/tmp/delg/delf_weights", export_path="/tmp/elfm_export")


@common.tool_main
def main():
    _EXPORT.export_with(extraction.ExportElfmModel)


if __name__ == "__main__":
    app.run(main)

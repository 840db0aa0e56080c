"""Exports a trained DELF model (local features) as a SavedModel for serving.

The multi-scale pyramid, receptive boxes, attention threshold and top-k selection
run inside the graph; signature `serving_default` as the original's.

  python tools/export_local_model.py --ckpt_path=/tmp/delf/delf_weights \\
      --export_path=/tmp/delf_export
"""

from absl import app

from delf_tf.extraction import export
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_FLAGS = extraction_flags.define_delf_export_flags(with_iou_threshold=True)


@common.tool_main
def main():
    _FLAGS.export_with(export.ExportLocalModel, "DELF local-feature model")


if __name__ == "__main__":
    app.run(main)

"""Exports a trained DELG model (local features and global descriptors) as a SavedModel.

The multi-scale pyramid, receptive boxes, attention threshold, top-k selection and
the per-scale global descriptors run inside the graph; signature `serving_default`
as the original's.

  python tools/export_local_and_global_model.py --ckpt_path=/tmp/delg/delf_weights \\
      --export_path=/tmp/delg_export
"""

from absl import app

from delf_tf.extraction import export
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_FLAGS = extraction_flags.define_delf_export_flags(with_iou_threshold=True)


@common.tool_main
def main():
    _FLAGS.export_with(export.ExportLocalAndGlobalModel, "DELG local+global model")


if __name__ == "__main__":
    app.run(main)

"""Exports a trained DELG model (local features and global descriptors) as a SavedModel.

The multi-scale pyramid, receptive boxes, attention threshold, top-k selection and
the per-scale global descriptors run inside the graph; signature `serving_default`
as the original's.

  python tools/export_local_and_global_model.py --ckpt_path=/tmp/delg/delf_weights \\
      --export_path=/tmp/delg_export
"""

from absl import app, flags

from delf_tf.extraction import export
from delf_tf.tools import common, export_flags

FLAGS = flags.FLAGS

export_flags.define_export_flags(with_iou_threshold=True)
flags.adopt_module_key_flags(export_flags)


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    architecture, explicit = export_flags.architecture_from_flags()
    with common.reported_errors():
        export.ExportLocalAndGlobalModel(FLAGS.ckpt_path, FLAGS.export_path,
                                         architecture=architecture, explicit=explicit,
                                         iou_threshold=FLAGS.iou_threshold,
                                 overwrite=FLAGS.overwrite)
    print(f"Exported DELG local+global model to {FLAGS.export_path}")


if __name__ == "__main__":
    app.run(main)

"""Exports a trained DELF model (local features) as a SavedModel for serving.

The multi-scale pyramid, receptive boxes, attention threshold and top-k selection
run inside the graph; signature `serving_default` as the original's.

  python tools/export_local_model.py --ckpt_path=/tmp/delf/delf_weights \\
      --export_path=/tmp/delf_export
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
        export.ExportLocalModel(FLAGS.ckpt_path, FLAGS.export_path, architecture=architecture,
                                explicit=explicit, iou_threshold=FLAGS.iou_threshold,
                                 overwrite=FLAGS.overwrite)
    print(f"Exported DELF local-feature model to {FLAGS.export_path}")


if __name__ == "__main__":
    app.run(main)

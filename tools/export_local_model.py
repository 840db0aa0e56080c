"""Exports a trained DELF model (local features) as a SavedModel for serving.

The multi-scale pyramid, receptive boxes, attention threshold and top-k selection
run inside the graph; signature `serving_default` (SPEC §8).

  python tools/export_local_model.py --ckpt_path=/tmp/delf/delf_weights \\
      --export_path=/tmp/delf_export
"""

import sys

from absl import app, flags

from delf_tf.extraction import export

FLAGS = flags.FLAGS

flags.DEFINE_string("ckpt_path", None,
                    "Checkpoint prefix to export: the <logdir>/delf_weights written by training.")
flags.DEFINE_string("export_path", None, "Directory to write the SavedModel to (replaced).")
flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "resnet101", "resnet_tiny"],
                  "Backbone of the checkpoint. Used only when the checkpoint has no "
                  "<ckpt_path>.json sidecar or when given explicitly.")
flags.DEFINE_boolean("block3_strides", True,
                     "Whether block3 has stride 32 (True) or 16 (False). Used only when the "
                     "checkpoint has no <ckpt_path>.json sidecar or when given explicitly.")
flags.DEFINE_boolean("use_autoencoder", True,
                     "Whether the model has the dimensionality-reducing autoencoder (sidecar "
                     "wins unless given explicitly).")
flags.DEFINE_integer("autoencoder_dimensions", 128,
                     "Local descriptor depth after the autoencoder (sidecar wins unless given "
                     "explicitly).")
flags.DEFINE_integer("local_feature_map_channels", 1024,
                     "Channels the autoencoder expands back to (sidecar wins unless given "
                     "explicitly).")
flags.DEFINE_float("iou_threshold", 1.0,
                   "NMS IoU threshold baked into the graph; 1.0 suppresses nothing.")
flags.mark_flags_as_required(["ckpt_path", "export_path"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    architecture = {name: FLAGS[name].value for name in export.ARCHITECTURE_FLAGS}
    explicit = [name for name in export.ARCHITECTURE_FLAGS if FLAGS[name].present]
    try:
        export.ExportLocalModel(FLAGS.ckpt_path, FLAGS.export_path, architecture=architecture,
                                explicit=explicit, iou_threshold=FLAGS.iou_threshold)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"Error: {e}")
    print(f"Exported DELF local-feature model to {FLAGS.export_path}")


if __name__ == "__main__":
    app.run(main)

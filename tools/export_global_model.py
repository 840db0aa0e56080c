"""Exports a trained DELG model's global descriptor as a SavedModel for serving.

The multi-scale pyramid runs inside the graph; signature `serving_default` with
inputs input_image, input_scales (unless --input_scales_list fixes them) and
input_global_scales_ind, output global_descriptors [S, D] (or global_descriptor
[D] with --multi_scale_pool_type average|sum).

  python tools/export_global_model.py --ckpt_path=/tmp/delg/delf_weights \\
      --export_path=/tmp/delg_global_export
"""

import sys

from absl import app, flags

from delf_tf.extraction import export

FLAGS = flags.FLAGS

flags.DEFINE_string("ckpt_path", None,
                    "Checkpoint prefix to export: the <logdir>/delf_weights written by training.")
flags.DEFINE_string("export_path", None, "Directory to write the SavedModel to (replaced).")
flags.DEFINE_list("input_scales_list", None,
                  "Optional comma-separated image scales fixed in the graph. If unset, the "
                  "signature has an input_scales input instead.")
flags.DEFINE_enum("multi_scale_pool_type", "None", ["None", "average", "sum"],
                  "How per-scale descriptors are pooled: None outputs global_descriptors "
                  "[S, D]; average/sum output one global_descriptor [D].", case_sensitive=False)
flags.DEFINE_boolean("normalize_global_descriptor", False,
                     "Whether to L2-normalise the output descriptor(s).")
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
flags.mark_flags_as_required(["ckpt_path", "export_path"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    scales = None
    if FLAGS.input_scales_list is not None:
        try:
            scales = [float(value) for value in FLAGS.input_scales_list]
        except ValueError as e:
            raise app.UsageError(
                    f"--input_scales_list={','.join(FLAGS.input_scales_list)}: {e}") from e
    architecture = {name: FLAGS[name].value for name in export.ARCHITECTURE_FLAGS}
    explicit = [name for name in export.ARCHITECTURE_FLAGS if FLAGS[name].present]
    try:
        export.ExportGlobalModel(FLAGS.ckpt_path, FLAGS.export_path, architecture=architecture,
                                 explicit=explicit, input_scales_list=scales,
                                 multi_scale_pool_type=FLAGS.multi_scale_pool_type,
                                 normalize_global_descriptor=FLAGS.normalize_global_descriptor)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"Error: {e}")
    print(f"Exported DELG global model to {FLAGS.export_path}")


if __name__ == "__main__":
    app.run(main)

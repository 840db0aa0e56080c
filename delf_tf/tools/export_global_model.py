"""Exports a trained DELG model's global descriptor as a SavedModel for serving.

The multi-scale pyramid runs inside the graph; signature `serving_default` with
inputs input_image, input_scales (unless --input_scales_list fixes them) and
input_global_scales_ind, output global_descriptors [S, D] (or global_descriptor
[D] with --multi_scale_pool_type average|sum).

  python tools/export_global_model.py --ckpt_path=/tmp/delg/delf_weights \\
      --export_path=/tmp/delg_global_export
"""

from absl import app, flags

from delf_tf.extraction import export
from delf_tf.tools import common, export_flags

FLAGS = flags.FLAGS

export_flags.define_export_flags(with_iou_threshold=False)
flags.adopt_module_key_flags(export_flags)
flags.DEFINE_list("input_scales_list", None,
                  "Optional comma-separated image scales fixed in the graph. If unset, the "
                  "signature has an input_scales input instead.")
flags.DEFINE_enum("multi_scale_pool_type", "None", ["None", "average", "sum"],
                  "How per-scale descriptors are pooled: None outputs global_descriptors "
                  "[S, D]; average/sum output one global_descriptor [D].", case_sensitive=False)
flags.DEFINE_boolean("normalize_global_descriptor", False,
                     "Whether to L2-normalise the output descriptor(s).")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    scales = None
    if FLAGS.input_scales_list is not None:
        try:
            scales = [float(value) for value in FLAGS.input_scales_list]
        except ValueError as e:
            raise app.UsageError(
                    f"--input_scales_list={','.join(FLAGS.input_scales_list)}: {e}") from e
    architecture, explicit = export_flags.architecture_from_flags()
    with common.reported_errors():
        export.ExportGlobalModel(FLAGS.ckpt_path, FLAGS.export_path, architecture=architecture,
                                 explicit=explicit, input_scales_list=scales,
                                 multi_scale_pool_type=FLAGS.multi_scale_pool_type,
                                 normalize_global_descriptor=FLAGS.normalize_global_descriptor,
                                 overwrite=FLAGS.overwrite)
    print(f"Exported DELG global model to {FLAGS.export_path}")


if __name__ == "__main__":
    app.run(main)

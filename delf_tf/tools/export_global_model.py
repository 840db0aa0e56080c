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
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_FLAGS = extraction_flags.define_delf_export_flags(with_iou_threshold=False)
_INPUT_SCALES_LIST = flags.DEFINE_list(
    "input_scales_list", None,
    "Optional comma-separated image scales fixed in the graph. If unset, the signature has an "
    "input_scales input instead.")
_MULTI_SCALE_POOL_TYPE = flags.DEFINE_enum(
    "multi_scale_pool_type", "None", ["None", "average", "sum"],
    "How per-scale descriptors are pooled: None outputs global_descriptors [S, D]; average and "
    "sum output one global_descriptor [D].", case_sensitive=False)
_NORMALIZE_GLOBAL_DESCRIPTOR = flags.DEFINE_boolean(
    "normalize_global_descriptor", False,
    "Whether to L2-normalise the output descriptor(s).")


@common.tool_main
def main():
    scales = None
    if _INPUT_SCALES_LIST.value is not None:
        try:
            scales = [float(value) for value in _INPUT_SCALES_LIST.value]
        except ValueError as e:
            raise app.UsageError(
                f"--input_scales_list={','.join(_INPUT_SCALES_LIST.value)}: {e}") from e
    _FLAGS.export_with(export.ExportGlobalModel, "DELG global model", input_scales_list=scales,
                       **extraction_flags.values(_MULTI_SCALE_POOL_TYPE,
                                                 _NORMALIZE_GLOBAL_DESCRIPTOR))


if __name__ == "__main__":
    app.run(main)

r"""Exports a GlobalFeatureNet (tools/train_global_features.py) as a global-only SavedModel,
optionally with a whitening learned after training, and writes a DelfConfig for extraction.

The SavedModel's `serving_default` is the original global-only export's: input_image
uint8 [H,W,3], input_scales float32 [S], input_global_scales_ind int32 [G] -> global_descriptor
float32 [D] (the generalized mean of the selected scales' descriptors, then L2) or, with
--nopool_scales, global_descriptors float32 [G, D].

--whitening=learned (Radenović et al.'s whitening from the matching pairs of an SfM database
split) or pca writes DatumProto files that the extractor applies as its global PCA step.

Example:
  python tools/export_global_features_model.py --ckpt_path=/tmp/gem_r101/model_weights \
    --export_path=/tmp/gem_r101_export --whitening=learned --data_root=/data \
    --training_dataset=retrieval-SfM-30k --config_path=/tmp/gem_r101_export.pbtxt
  python tools/extract_delg_features.py --delf_config_path=/tmp/gem_r101_export.pbtxt ...
"""

from absl import app

from delf_tf.global_features import export
from delf_tf.tools import common, config_flags, extraction_flags

__all__ = ["main"]

_EXPORT = extraction_flags.define_export_flags(
    "the model_weights written by train_global_features (with its .json description).",
    ckpt_path="/tmp/global_features/model_weights", export_path="/tmp/global_features_export")
# One flag per GlobalExportOptions field: its name, type, default and help (the class docstring).
_OPTIONS = config_flags.define_config_flags(export.GlobalExportOptions)


@common.tool_main
def main():
    options = _OPTIONS.config()
    try:
        options.scales()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    exported = _EXPORT.export_with(export.ExportGlobalFeaturesModel, options=options)
    if exported.whitening_database:
        print(f"{options.whitening} whitening from {exported.whitening_database} written next "
              "to the export")
    if exported.config_path:
        print(f"DelfConfig written to {exported.config_path}")


if __name__ == "__main__":
    app.run(main)

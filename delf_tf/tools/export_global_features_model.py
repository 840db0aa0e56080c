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

import os

from absl import app, flags

from delf_tf.global_features import extraction, training, whitening
from delf_tf.models import global_model
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_EXPORT = extraction_flags.define_export_flags(
    "the model_weights written by train_global_features (with its .json description).",
    ckpt_path="/tmp/global_features/model_weights", export_path="/tmp/global_features_export")
_POOL_SCALES = flags.DEFINE_bool(
    "pool_scales", True,
    "Output one pooled global_descriptor; otherwise per-scale global_descriptors.")
_MULTISCALE = flags.DEFINE_string(
    "multiscale", "[1]",
    "Scales written into --config_path, e.g. '[1, 1/2**(1/2)]'.")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 1024,
    "Longer image side for whitening learning and max_image_size of --config_path.")
_WHITENING = flags.DEFINE_enum(
    "whitening", "none", ["none", "learned", "pca"],
    "Whitening learned on --training_dataset after training.")
_DATA_ROOT = flags.DEFINE_string(
    "data_root", "",
    "As train_global_features' --data_root.")
_TRAINING_DATASET = flags.DEFINE_string(
    "training_dataset", "retrieval-SfM-30k",
    "SfM database whose pairs/images learn the whitening (train/<name>/<name>.pkl).")
_WHITENING_SPLIT = flags.DEFINE_string(
    "whitening_split", "train",
    "Split of the database used for whitening.")
_CONFIG_PATH = flags.DEFINE_string(
    "config_path", None,
    "Where to write a DelfConfig pbtxt for extraction (optional).")


def _export(ckpt_path: str, export_path: str, overwrite: bool) -> global_model.GlobalFeatureNet:
    from delf_tf.extraction import export

    export.check_export_path(export_path, overwrite)
    model = global_model.load_global_model(ckpt_path)
    extraction.ExportGlobalFeatureNet(model, export_path, pool_scales=_POOL_SCALES.value,
                                      overwrite=overwrite)
    return model


def _learn_whitening(model: global_model.GlobalFeatureNet, export_path: str):
    name = _TRAINING_DATASET.value
    database = os.path.join(_DATA_ROOT.value, "train", name, f"{name}.pkl")
    learned = whitening.LearnWhiteningFromDatabase(
        model, database, _WHITENING_SPLIT.value, _IMAGE_SIZE.value, _WHITENING.value)
    parameters = whitening.save_whitening(learned, export_path + "_whitening", _WHITENING.value)
    print(f"{_WHITENING.value} whitening from {database} written next to the export")
    return parameters


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    try:
        scales = training.parse_scales(_MULTISCALE.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    model = _EXPORT.export_with(_export)
    export_path = os.path.abspath(_EXPORT.export_path.value)
    parameters = None if _WHITENING.value == "none" else _learn_whitening(model, export_path)
    if _CONFIG_PATH.value:
        extraction.WriteGlobalDelfConfig(_CONFIG_PATH.value, export_path, scales,
                                         _IMAGE_SIZE.value, parameters)
        print(f"DelfConfig written to {_CONFIG_PATH.value}")


if __name__ == "__main__":
    app.run(main)

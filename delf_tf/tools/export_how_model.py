r"""Exports a trained HOW network (tools/train_how.py) as a SavedModel with
DELF's local-feature `serving_default` signature (input_image, input_scales,
input_max_feature_num, input_abs_thres -> boxes, features, scales, scores):
every cell of every scale is a feature (descriptor L2(o(ū)), 128-D; score
its strength ||u||), the strongest of all scales kept.

Extract with any delf_tf extraction tool and configs/how_r18_config.pbtxt, e.g.
  delf-extract-delg-features --delf_config_path=configs/how_r18_config.pbtxt \
    --dataset_file_path=gnd_roxford5k.mat --images_dir=jpg --image_set=index \
    --output_features_dir=how_features/index

Example:
  python tools/export_how_model.py --ckpt_path=/tmp/how/how_weights \
    --export_path=parameters/how_r18/model
"""

from absl import app

from delf_tf.how import extraction
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_EXPORT = extraction_flags.define_export_flags(
    "the HOW network written by train_how (with its .json description).",
    ckpt_path="/tmp/how/how_weights", export_path="/tmp/how_export")


@common.tool_main
def main():
    _EXPORT.export_with(extraction.ExportHowModel)


if __name__ == "__main__":
    app.run(main)

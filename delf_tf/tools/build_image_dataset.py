"""Builds Google Landmarks TFRecord shards from images and GLDv2 CSV files.

Example:
  python tools/build_image_dataset.py --train_directory=/data/gldv2/train \
      --train_clean_csv_path=/data/gldv2/train_clean.csv --output_directory=/data/tfrecord \
      --generate_train_validation_splits --num_shards=128
"""

from absl import app

from delf_tf.data import builder
from delf_tf.tools import common, config_flags

__all__ = ["main"]

# One flag per ImageDatasetParams field: its name, type, default and help (the class docstring).
_PARAMS = config_flags.define_config_flags(builder.ImageDatasetParams)


@common.tool_main
def main():
    builder.build_image_dataset(_PARAMS.config())


if __name__ == "__main__":
    app.run(main)

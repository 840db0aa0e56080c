"""Builds Google Landmarks TFRecord shards from images and GLDv2 CSV files.

Example:
  python tools/build_image_dataset.py --train_directory=/data/gldv2/train \
      --train_clean_csv_path=/data/gldv2/train_clean.csv --output_directory=/data/tfrecord \
      --generate_train_validation_splits --num_shards=128
"""

from absl import app, flags

from delf_tf.data import builder
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_TRAIN_DIRECTORY = flags.DEFINE_string(
    "train_directory", "/tmp/",
    "Directory with the training images (<id>.jpg).")
_TEST_DIRECTORY = flags.DEFINE_string(
    "test_directory", None,
    "Directory with the test images (<id>.jpg).")
_OUTPUT_DIRECTORY = flags.DEFINE_string(
    "output_directory", "/tmp/",
    "Directory for the TFRecord shards and relabeling.csv.")
_TRAIN_CSV_PATH = flags.DEFINE_string(
    "train_csv_path", "/tmp/train.csv",
    "GLDv2 train.csv (id,url,landmark_id); labels are used as they are.")
_TRAIN_CLEAN_CSV_PATH = flags.DEFINE_string(
    "train_clean_csv_path", None,
    "GLDv2 train_clean.csv (landmark_id,images); if set, used instead of train_csv_path, labels "
    "are relabelled to contiguous ids and relabeling.csv is written.")
_TEST_CSV_PATH = flags.DEFINE_string(
    "test_csv_path", None,
    "Test CSV with an id column; the test set is written unlabelled.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 128,
    "Number of shards per split.")
_GENERATE_SPLITS = flags.DEFINE_boolean(
    "generate_train_validation_splits", False,
    "Split the training images into train and validation shards (per label).")
_VALIDATION_SPLIT_SIZE = flags.DEFINE_float(
    "validation_split_size", 0.2,
    "Fraction of each label's images that go to validation (at least one).")
_SEED = flags.DEFINE_integer(
    "seed", 0,
    "Seed of the split and of the shuffling.")
_SKIP_MISSING_IMAGES = flags.DEFINE_boolean(
    "skip_missing_images", False,
    "Leave out missing or unreadable images (listed at the end) instead of failing.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        builder.BuildImageDataset(**extraction_flags.values(
            _TRAIN_DIRECTORY, _TEST_DIRECTORY, _OUTPUT_DIRECTORY, _TRAIN_CSV_PATH,
            _TRAIN_CLEAN_CSV_PATH, _TEST_CSV_PATH, _NUM_SHARDS, _GENERATE_SPLITS,
            _VALIDATION_SPLIT_SIZE, _SEED, _SKIP_MISSING_IMAGES))


if __name__ == "__main__":
    app.run(main)

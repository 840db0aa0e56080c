"""Renders the embedded demo landmark data set from scikit-image's bundled photos.

Writes GLDv2-style training images and CSVs and a Revisited-style query/index set
with its ground-truth .mat file (see delf_tf/data/demo.py for the layout).

Example:
  python tools/make_demo_data.py --output_dir=/tmp/delf_demo/data
"""

import dataclasses

from absl import app, flags

from delf_tf.data import demo
from delf_tf.tools import common

__all__ = ["main"]

_DEFAULTS = demo.DemoConfig()

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Directory to write the data set into.")
_NUM_LANDMARKS = flags.DEFINE_integer(
    "num_landmarks", _DEFAULTS.num_landmarks,
    f"Number of landmarks (at most {len(demo.LANDMARK_SOURCES)}).")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", _DEFAULTS.image_size,
    "Longer side of every rendered image, in pixels.")
_TRAIN_PER_LANDMARK = flags.DEFINE_integer(
    "train_per_landmark", _DEFAULTS.train_per_landmark,
    "Training images per landmark.")
_NOISY_PER_LANDMARK = flags.DEFINE_integer(
    "noisy_per_landmark", _DEFAULTS.noisy_per_landmark,
    "Training images per landmark that barely show it (in train.csv, not in train_clean.csv).")
_QUERIES_PER_LANDMARK = flags.DEFINE_integer(
    "queries_per_landmark", _DEFAULTS.queries_per_landmark,
    "Query images per landmark.")
_EASY_PER_LANDMARK = flags.DEFINE_integer(
    "easy_per_landmark", _DEFAULTS.easy_per_landmark,
    "Easy index images per landmark.")
_HARD_PER_LANDMARK = flags.DEFINE_integer(
    "hard_per_landmark", _DEFAULTS.hard_per_landmark,
    "Hard index images per landmark.")
_JUNK_PER_LANDMARK = flags.DEFINE_integer(
    "junk_per_landmark", _DEFAULTS.junk_per_landmark,
    "Junk index images per landmark (landmark mostly cut off).")
_NUM_DISTRACTORS = flags.DEFINE_integer(
    "num_distractors", _DEFAULTS.num_distractors,
    "Index images without any landmark.")
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed,
    "Seed of the whole rendering.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    if not _OUTPUT_DIR.value:
        raise app.UsageError("--output_dir is required")
    config = demo.DemoConfig(
        num_landmarks=_NUM_LANDMARKS.value, image_size=_IMAGE_SIZE.value,
        train_per_landmark=_TRAIN_PER_LANDMARK.value,
        noisy_per_landmark=_NOISY_PER_LANDMARK.value,
        queries_per_landmark=_QUERIES_PER_LANDMARK.value,
        easy_per_landmark=_EASY_PER_LANDMARK.value, hard_per_landmark=_HARD_PER_LANDMARK.value,
        junk_per_landmark=_JUNK_PER_LANDMARK.value, num_distractors=_NUM_DISTRACTORS.value,
        seed=_SEED.value)
    try:
        config.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    with common.reported_errors():
        dataset = demo.GenerateDemoDataset(_OUTPUT_DIR.value, config)
    print(f"Wrote {dataset.train_csv_path}, {dataset.train_clean_csv_path} and "
          f"{dataset.dataset_file_path} ({dataclasses.asdict(config)})")


if __name__ == "__main__":
    app.run(main)

"""tf.data reader for Google Landmarks TFRecords (the original's `CreateDataset`).

Records are those written by `delf_tf.data.builder`. Images are decoded with 3 channels
(grayscale and CMYK JPEGs included), augmented or plainly resized to a square, and normalised
with `delf_tf.models.normalize_images`. Augmentation draws its randomness from a per-element
stateless seed, so with `deterministic=True` the same seed gives the same batches however many
threads the pipeline uses.
"""

import os
import re

import tensorflow as tf

from delf_tf.data import swap
from delf_tf.models import normalize_images

__all__ = [
    # The original's names (the compatibility surface).
    "GetNumberOfClasses", "ParseExample", "DecodeImage", "AugmentImage", "PreprocessImage",
    "CreateDataset", "CorruptRecordsError",
    # delf_tf's own API.
    "DATASET_NUM_CLASSES", "MIN_OBJECT_COVERED", "ASPECT_RATIO_RANGE", "AREA_RANGE",
    "MAX_ATTEMPTS",
]

# Number of classes of each known dataset version (GLDv1, GLDv2 full and clean).
DATASET_NUM_CLASSES = {
        "gld_v1": 14951,
        "gld_v2": 203094,
        "gld_v2_clean": 81313,
}

# Augmentation parameters of the original (Inception-style random crop).
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
AREA_RANGE = (0.08, 1.0)
MAX_ATTEMPTS = 100

_FEATURES = {
        "image/height": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "image/width": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "image/channels": tf.io.FixedLenFeature([], tf.int64, default_value=3),
        "image/format": tf.io.FixedLenFeature([], tf.string, default_value=b"JPEG"),
        "image/id": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=b""),
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        # Test records carry no label; -1 marks them (the trainer rejects it).
        "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def GetNumberOfClasses(dataset_version: str) -> int:
    """Number of classes of a dataset version ('gld_v1', 'gld_v2', 'gld_v2_clean')."""
    try:
        return DATASET_NUM_CLASSES[dataset_version]
    except KeyError:
        raise ValueError(f"Unknown dataset_version {dataset_version!r}; expected one of "
                         f"{sorted(DATASET_NUM_CLASSES)}") from None


def ParseExample(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized record into its features (scalars), e.g. image/encoded."""
    return tf.io.parse_single_example(serialized, _FEATURES)


def DecodeImage(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes -> uint8 [H, W, 3]."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def AugmentImage(image: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Random crop (the original's area and aspect-ratio ranges) resized to
    [image_size, image_size] with 'area'.

    Args:
      image: uint8 [H, W, 3].
      image_size: output side.
      seed: int32/int64 [2] stateless seed.

    Returns:
      float32 [image_size, image_size, 3] in [0, 255].
    """
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=whole_image,
            seed=seed,
            min_object_covered=MIN_OBJECT_COVERED,
            aspect_ratio_range=ASPECT_RATIO_RANGE,
            area_range=AREA_RANGE,
            max_attempts=MAX_ATTEMPTS,
            use_image_if_no_bounding_boxes=True)
    cropped = tf.slice(image, begin, size)
    return tf.image.resize(cropped, [image_size, image_size], method="area")


def PreprocessImage(
    encoded: tf.Tensor, image_size: int, augmentation: bool, seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Encoded bytes -> normalised float32 [image_size, image_size, 3].

    Without augmentation the whole image is resized (bilinear, aspect ratio not kept), as
    the original did.
    """
    image = DecodeImage(encoded)
    if augmentation:
        resized = AugmentImage(image, image_size, seed)
    else:
        resized = tf.image.resize(image, [image_size, image_size])
    # The crop has a dynamic shape; the output's is known.
    resized = tf.ensure_shape(resized, [image_size, image_size, 3])
    return normalize_images(resized)


def CreateDataset(
    file_pattern: str,
    image_size: int = 321,
    batch_size: int = 32,
    augmentation: bool = False,
    seed: int | None = 0,
    *,
    deterministic: bool = False,
    repeat: bool = True,
    shuffle_buffer_size: int = 1000,
    num_input_pipelines: int = 1,
    input_pipeline_id: int = 0,
    drop_remainder: bool = True,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches of (normalised images float32 [B, S, S, 3], labels int32 [B]).

    Args:
      file_pattern: glob of TFRecord shards (e.g. '/tmp/data/train*').
      image_size: S, the side of the square output images.
      batch_size: B (per input pipeline: the per-replica batch size under tf.distribute).
      augmentation: the original's random crop instead of a plain resize.
      seed: seeds file order, shuffling and augmentation; None draws a random seed.
      deterministic: keep element order fixed through the parallel stages (slower); with a
        seed this makes the batches reproducible.
      repeat: loop over the data forever (training); False gives one pass.
      shuffle_buffer_size: records held for shuffling (0 disables shuffling).
      num_input_pipelines, input_pipeline_id: this pipeline's share of the data under
        multi-worker training (by file when there are enough files, else by record).
      drop_remainder: drop a final partial batch (keeps shapes static for tf.distribute).
      skip_batches: start after this many batches of the same stream (resuming training:
        the records are skipped undecoded, and augmentation is seeded by record position,
        so the batches that follow are the ones an uninterrupted run would see).
    """
    filenames = _record_files(file_pattern)
    if seed is None:
        seed = int(tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64))
    dataset = _records(filenames, seed, deterministic, repeat, shuffle_buffer_size,
                       num_input_pipelines, input_pipeline_id)

    def parse(index: tf.Tensor, serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        features = ParseExample(serialized)
        element_seed = tf.stack([tf.cast(seed, tf.int64),
                                 index * num_input_pipelines + input_pipeline_id])
        image = PreprocessImage(features["image/encoded"], image_size, augmentation,
                                element_seed)
        label = tf.cast(features["image/class/label"], tf.int32)
        return image, label

    dataset = dataset.enumerate()
    if skip_batches:
        dataset = dataset.skip(skip_batches * batch_size)
    dataset = dataset.map(
            parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return _with_options(dataset.prefetch(tf.data.AUTOTUNE), deterministic)


def _with_options(dataset: tf.data.Dataset, deterministic: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = deterministic
    # Sharding is done per input pipeline (see _records); tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def _record_files(file_pattern: str) -> list[str]:
    """The sorted files matching `file_pattern`; ValueError if none, or all are empty;
    swap.InterruptedSwapError if their directory holds an interrupted rebuild."""
    filenames = sorted(tf.io.gfile.glob(file_pattern))
    if not filenames:
        raise ValueError(f"No files match {file_pattern!r}")
    for directory in sorted({os.path.dirname(name) for name in filenames}):
        # A rebuild killed while renaming its shards may have left old and new ones.
        swap.check_no_interrupted_swap(directory)
    if all(tf.io.gfile.stat(name).length == 0 for name in filenames):
        # Repeating an empty dataset would spin forever without yielding a batch.
        raise ValueError(f"Every file matching {file_pattern!r} is empty (0 bytes): "
                         f"{', '.join(filenames[:5])}{' ...' if len(filenames) > 5 else ''}")
    return filenames


def _records(filenames, seed, deterministic, repeat, shuffle_buffer_size, num_input_pipelines,
             input_pipeline_id) -> tf.data.Dataset:
    """Serialized records of this input pipeline's share, shuffled and repeated."""
    files = tf.data.Dataset.from_tensor_slices(filenames)
    shard_by_record = num_input_pipelines > 1 and len(filenames) < num_input_pipelines
    if num_input_pipelines > 1 and not shard_by_record:
        files = files.shard(num_input_pipelines, input_pipeline_id)
    if shuffle_buffer_size > 0:
        files = files.shuffle(len(filenames), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        files = files.repeat()
    dataset = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(filenames), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic)
    if shard_by_record:
        dataset = dataset.shard(num_input_pipelines, input_pipeline_id)
    if shuffle_buffer_size > 0:
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed)
    return dataset


def CorruptRecordsError(file_pattern: str, error: tf.errors.DataLossError) -> ValueError:
    """The error to raise when reading `file_pattern` failed with `error` (a truncated or
    corrupt record): names the bad file, found by reading each matched file in turn (TF's
    own message names none)."""
    for name in sorted(tf.io.gfile.glob(file_pattern)):
        try:
            tf.data.TFRecordDataset(name).reduce(0, lambda count, _: count + 1)
        except tf.errors.DataLossError as e:
            return ValueError(f"Truncated or corrupt TFRecord file {name} (matched by "
                              f"{file_pattern!r}): {_first_line(e)}; rebuild it with "
                              "build_image_dataset")
    return ValueError(f"A TFRecord file matched by {file_pattern!r} is truncated or corrupt "
                      f"(every file reads on its own now): {_first_line(error)}")


def _first_line(error: tf.errors.OpError) -> str:
    """TF's message without its `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    text = (error.message or str(error)).strip().splitlines()[0]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)

"""Builds Google Landmarks TFRecord shards (the original's record format) from a folder
of JPEGs and GLDv2 CSVs.

The library behind `tools/build_image_dataset.py`. Inputs:

- `train.csv` (`id,url,landmark_id`): every listed image, labelled with its landmark id as is.
- `train_clean.csv` (`landmark_id,images`, images space-separated): labels relabelled to
  contiguous ids in sorted order of landmark_id; `relabeling.csv` (`new_label,old_label`) is
  written next to the shards.
- `test.csv` (`id,...`): the test set, written without labels.

Images are `<dir>/<id>.jpg` (the GLDv2 nested layout `<dir>/a/b/c/<id>.jpg` is found too); the
directory may also be a glob pattern as in the original's `--train_directory=train/*/*/*/`, whose
`*.jpg` matches are looked up by id.
Shards are named `{train,validation,test}-{shard:05d}-of-{N:05d}`; `image/encoded` holds the
original file bytes. Missing or unreadable images are reported by id: the build fails with the
full list, or skips them when asked. Shards are written under temporary names and renamed only
when the whole build succeeded, so a failed build leaves no partial dataset behind; the renames
go through a journal (`delf_tf.data.swap`), so a build killed while renaming over an older
one is completed by the next run, and readers refuse the directory until then.
"""

import concurrent.futures
import csv
import dataclasses
import functools
import glob
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf
from PIL import UnidentifiedImageError

from delf_tf import checks, utils
from delf_tf.data import swap
from delf_tf.io import atomic

__all__ = [
    # The original's names (the compatibility surface).
    "ReadTrainCsv", "ReadCleanTrainCsv", "ReadTestCsv", "WriteRelabelingFile",
    "SplitTrainValidation", "MakeExample", "ShardNames", "WriteShards", "BuildImageDataset",
    # delf_tf's own API.
    "RELABELING_FILENAME", "ImageDatasetParams", "ImageErrors", "ImageEntry",
    "build_image_dataset", "image_path",
]

RELABELING_FILENAME = "relabeling.csv"
_MAX_REPORTED_IDS = 1000


class ImageErrors(ValueError):
    """Raised when images are missing or unreadable; `errors` maps image id -> reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        lines = [f"  {image_id}: {reason}" for image_id, reason in
                 sorted(self.errors.items())[:_MAX_REPORTED_IDS]]
        more = len(self.errors) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        super().__init__(
                f"{len(self.errors)} image(s) missing or unreadable (pass "
                "--skip_missing_images to leave them out):\n" + "\n".join(lines))


@dataclasses.dataclass(frozen=True)
class ImageEntry:
    """One image to write: its id, file path and label (-1 = unlabelled, the test set)."""
    image_id: str
    path: str
    label: int = -1


def image_path(directory: str, image_id: str) -> str:
    """Returns `<directory>/<id>.jpg`, or the GLDv2 nested `<dir>/a/b/c/<id>.jpg` if only
    that exists. A `directory` with glob characters (`train/*/*/*/`) names the folders whose
    `*.jpg` files are the images; an id without a match gets `<directory>/<id>.jpg`, which is
    then reported missing."""
    if any(c in directory for c in "*?["):
        found = _jpegs_matching(directory).get(image_id)
        return found if found else os.path.join(directory, image_id + ".jpg")
    flat = os.path.join(directory, image_id + ".jpg")
    if os.path.exists(flat) or len(image_id) < 3:
        return flat
    nested = os.path.join(directory, image_id[0], image_id[1], image_id[2], image_id + ".jpg")
    return nested if os.path.exists(nested) else flat


@functools.lru_cache(maxsize=4)
def _jpegs_matching(directory_pattern: str) -> dict[str, str]:
    """id -> path of every `<directory_pattern>/*.jpg` (one glob per pattern and process)."""
    paths = sorted(glob.glob(os.path.join(directory_pattern, "*.jpg")))
    return {os.path.splitext(os.path.basename(path))[0]: path for path in paths}


def _read_csv_rows(path: str, required_columns: Sequence[str]) -> list[dict[str, str]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such CSV file: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required_columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                    f"{path}: missing column(s) {missing}; header is {reader.fieldnames}")
        return list(reader)


def _parse_label(value: str, path: str, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{path}, line {line}: landmark_id {value!r} is not an integer") from None


def _image_id(value: str, path: str, line: int) -> str:
    """An id names a file inside the image directory: absolute ids and ids that
    climb out with '..' are refused (they would read other files into the records)."""
    return checks.relative_name(value, f"{path}, line {line}: image id")


def ReadTrainCsv(csv_path: str, image_dir: str) -> list[ImageEntry]:
    """Reads GLDv2 `train.csv` (`id,url,landmark_id`); labels are the landmark ids unchanged."""
    rows = _read_csv_rows(csv_path, ["id", "landmark_id"])
    return [ImageEntry(row["id"], image_path(image_dir, _image_id(row["id"], csv_path, i + 2)),
                       _parse_label(row["landmark_id"], csv_path, i + 2))
            for i, row in enumerate(rows)]


def ReadCleanTrainCsv(
    csv_path: str, image_dir: str,
) -> tuple[list[ImageEntry], dict[int, int]]:
    """Reads GLDv2 `train_clean.csv` (`landmark_id,images`).

    Returns:
      (entries with contiguous labels, relabeling {old landmark_id: new label}); new labels
      are assigned in ascending order of landmark_id.
    """
    rows = _read_csv_rows(csv_path, ["landmark_id", "images"])
    images_by_label: dict[int, list[str]] = {}
    for i, row in enumerate(rows):
        old_label = _parse_label(row["landmark_id"], csv_path, i + 2)
        images_by_label.setdefault(old_label, []).extend(
                _image_id(image_id, csv_path, i + 2) for image_id in row["images"].split())
    relabeling = {old: new for new, old in enumerate(sorted(images_by_label))}
    entries = [ImageEntry(image_id, image_path(image_dir, image_id), relabeling[old])
               for old in sorted(images_by_label) for image_id in images_by_label[old]]
    return entries, relabeling


def ReadTestCsv(csv_path: str, image_dir: str) -> list[ImageEntry]:
    """Reads a test CSV with an `id` column; entries are unlabelled."""
    rows = _read_csv_rows(csv_path, ["id"])
    return [ImageEntry(row["id"], image_path(image_dir, _image_id(row["id"], csv_path, i + 2)))
            for i, row in enumerate(rows)]


def _relabeling_csv(relabeling: dict[int, int]) -> bytes:
    lines = ["new_label,old_label"]
    lines += [f"{new},{old}" for old, new in sorted(relabeling.items(), key=lambda kv: kv[1])]
    return ("\n".join(lines) + "\n").encode()


def WriteRelabelingFile(relabeling: dict[int, int], output_directory: str) -> str:
    """Writes `relabeling.csv` (`new_label,old_label`, ascending new label); returns its path."""
    path = os.path.join(output_directory, RELABELING_FILENAME)
    atomic.write_bytes_atomic(path, _relabeling_csv(relabeling))
    return path


def SplitTrainValidation(
    entries: Sequence[ImageEntry], validation_split_size: float, seed: int,
) -> tuple[list[ImageEntry], list[ImageEntry]]:
    """Per-label seeded split: max(1, int(size * n)) images of each label go to validation.

    Labels are visited in ascending order so the split depends only on the inputs and the
    seed; both splits are reshuffled with the same generator.
    """
    if not 0.0 < validation_split_size < 1.0:
        raise ValueError(
                f"validation_split_size must be in (0, 1), got {validation_split_size}")
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[ImageEntry]] = {}
    for entry in entries:
        by_label.setdefault(entry.label, []).append(entry)
    train, validation = [], []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))
        num_validation = max(1, int(validation_split_size * len(group)))
        validation += [group[i] for i in order[:num_validation]]
        train += [group[i] for i in order[num_validation:]]
    return _shuffled(train, rng), _shuffled(validation, rng)


def _shuffled(entries: Sequence[ImageEntry], rng: np.random.Generator) -> list[ImageEntry]:
    return [entries[i] for i in rng.permutation(len(entries))]


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def MakeExample(
    entry: ImageEntry, encoded: bytes, height: int, width: int, image_format: str,
) -> tf.train.Example:
    """The original's tf.train.Example record; no label for unlabelled (test) images."""
    feature = {
            "image/height": _int64_feature(height),
            "image/width": _int64_feature(width),
            # The reader always decodes to 3 channels (grayscale and CMYK JPEGs included).
            "image/channels": _int64_feature(3),
            "image/colorspace": _bytes_feature(b"RGB"),
            "image/format": _bytes_feature(image_format.encode()),
            "image/id": _bytes_feature(entry.image_id.encode()),
            "image/filename": _bytes_feature(os.path.basename(entry.path).encode()),
            "image/encoded": _bytes_feature(encoded),
    }
    if entry.label >= 0:
        feature["image/class/label"] = _int64_feature(entry.label)
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _load_image(entry: ImageEntry) -> tuple[bytes, int, int, str] | str:
    """Returns (file bytes, height, width, format), or the reason the image cannot be used."""
    try:
        with open(entry.path, "rb") as f:
            encoded = f.read()
    except FileNotFoundError:
        return f"missing file {entry.path}"
    except OSError as e:
        return f"cannot read {entry.path}: {e}"
    try:
        # A full decode catches truncated files, which a header check would let through.
        with utils.OpenImage(io.BytesIO(encoded), entry.path) as img:
            img.load()
            width, height = img.size
            image_format = img.format or "JPEG"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"unreadable image {entry.path}: {e}"
    if image_format not in ("JPEG", "PNG", "GIF", "BMP"):
        return f"unsupported image format {image_format} in {entry.path}"
    return encoded, height, width, image_format


def ShardNames(split: str, num_shards: int) -> list[str]:
    """`{split}-{shard:05d}-of-{num_shards:05d}` for every shard."""
    return [f"{split}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


# `{split}-{shard:05d}-of-{num_shards:05d}`, as ShardNames writes them.
_SHARD_NAME = re.compile(r"^([A-Za-z_]+)-\d{5}-of-\d{5}$")


class _ShardWriter:
    """Writes shards (and other outputs) under temporary names; `commit` swaps them in
    recoverably (`delf_tf.data.swap`), `abort` removes them."""

    def __init__(self, output_directory: str):
        self._output_directory = output_directory
        self._swap = swap.StagedSwap(output_directory)

    def write(self, name: str, records: Iterable[bytes]) -> None:
        with tf.io.TFRecordWriter(self._swap.stage(name)) as writer:
            for record in records:
                writer.write(record)

    def write_file(self, name: str, data: bytes) -> None:
        with open(self._swap.stage(name), "wb") as f:
            f.write(data)

    def commit(self) -> None:
        """Renames the new files into place and removes the shards of an earlier build
        with another shard count (`<split>-*-of-<other count>`), which a `<split>*` file
        pattern would otherwise read too; a kill meanwhile is rolled forward by the next
        build, and readers refuse the directory until then."""
        kept = set(self._swap.staged_names)
        splits = {name.split("-", 1)[0] for name in kept if _SHARD_NAME.match(name)}
        removals = [entry for entry in sorted(os.listdir(self._output_directory))
                    if (match := _SHARD_NAME.match(entry))
                    and match.group(1) in splits and entry not in kept]
        self._swap.commit(removals)

    def remove_stale_temporary_files(self) -> None:
        """Removes the temporaries a build killed before its swap left behind."""
        self._swap.remove_stale_journal_temporaries()
        for entry in os.listdir(self._output_directory):
            if (entry.startswith(".") and entry.endswith(".tmp")
                    and (_SHARD_NAME.match(entry[1:-len(".tmp")])
                         or entry == swap.StagedSwap.temporary_name(RELABELING_FILENAME))):
                os.unlink(os.path.join(self._output_directory, entry))

    def abort(self) -> None:
        self._swap.abort()


def WriteShards(
    split: str,
    entries: Sequence[ImageEntry],
    writer: _ShardWriter,
    num_shards: int,
    errors: dict[str, str],
    progress: Callable[[str], None] = print,
    num_threads: int = 8,
) -> int:
    """Writes `entries` in order into `num_shards` shards of near-equal size.

    Unusable images are recorded in `errors` (id -> reason) and left out. Returns the number
    of records written.
    """
    boundaries = np.linspace(0, len(entries), num_shards + 1).astype(np.int64)
    written = 0
    with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
        for shard, name in enumerate(ShardNames(split, num_shards)):
            shard_entries = entries[boundaries[shard]:boundaries[shard + 1]]
            records = []
            for entry, loaded in zip(shard_entries, pool.map(_load_image, shard_entries)):
                if isinstance(loaded, str):
                    errors[entry.image_id] = loaded
                    continue
                records.append(MakeExample(entry, *loaded).SerializeToString())
            writer.write(name, records)
            written += len(records)
            progress(f"{split}: wrote shard {shard + 1}/{num_shards} "
                     f"({boundaries[shard + 1]}/{len(entries)} images)")
    return written


@dataclasses.dataclass(frozen=True)
class ImageDatasetParams:
    """What BuildImageDataset reads and writes (the flags of tools/build_image_dataset.py).

    `train_clean_csv_path`, when given, takes precedence over `train_csv_path`. Without a
    train/validation split every training image goes to the `train` shards (shuffled with
    `seed`).

    Attributes:
      train_directory: Directory with the training images (<id>.jpg).
      test_directory: Directory with the test images (<id>.jpg).
      output_directory: Directory for the TFRecord shards and relabeling.csv.
      train_csv_path: GLDv2 train.csv (id,url,landmark_id); labels are used as they are.
      train_clean_csv_path: GLDv2 train_clean.csv (landmark_id,images); if set, used instead
        of train_csv_path, labels are relabelled to contiguous ids and relabeling.csv is
        written.
      test_csv_path: Test CSV with an id column; the test set is written unlabelled.
      num_shards: Number of shards per split.
      generate_train_validation_splits: Split the training images into train and validation
        shards (per label).
      validation_split_size: Fraction of each label's images that go to validation (at least
        one).
      seed: Seed of the split and of the shuffling.
      skip_missing_images: Leave out missing or unreadable images (listed at the end) instead
        of failing.
    """
    train_directory: str = "/tmp/"
    test_directory: str | None = None
    output_directory: str = "/tmp/"
    train_csv_path: str | None = "/tmp/train.csv"
    train_clean_csv_path: str | None = None
    test_csv_path: str | None = None
    num_shards: int = 128
    generate_train_validation_splits: bool = False
    validation_split_size: float = 0.2
    seed: int = 0
    skip_missing_images: bool = False


def BuildImageDataset(*, progress: Callable[[str], None] = print, **params) -> dict[str, int]:
    """The original's entry point: build_image_dataset(ImageDatasetParams(**params), progress);
    `params` are ImageDatasetParams' fields, by keyword."""
    return build_image_dataset(ImageDatasetParams(**params), progress)


def build_image_dataset(params: ImageDatasetParams,
                        progress: Callable[[str], None] = print) -> dict[str, int]:
    """Builds the TFRecord shards (see the module docstring and ImageDatasetParams).

    Returns:
      {split name: number of records written}.

    Raises:
      ImageErrors: images are missing or unreadable and `skip_missing_images` is False
        (nothing is left in `output_directory` then).
    """
    if params.num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {params.num_shards}")
    if params.generate_train_validation_splits:
        checks.in_range("validation_split_size", params.validation_split_size, 0.0, 1.0,
                        low_inclusive=False, high_inclusive=False)
    output_directory = params.output_directory
    if os.path.isdir(output_directory) and swap.complete_interrupted_swap(output_directory):
        progress(f"Completed the shard swap of an interrupted earlier build in "
                 f"{output_directory}")
    splits, relabeling = _read_splits(params)
    progress(", ".join(f"{name}: {len(split)} images" for name, split in splits.items()))

    os.makedirs(output_directory, exist_ok=True)
    # Missing files are cheap to find up front; the user gets the complete list before
    # any image is decoded.
    missing = {entry.image_id: f"missing file {entry.path}"
               for split in splits.values() for entry in split
               if not os.path.isfile(entry.path)}
    if missing and not params.skip_missing_images:
        raise ImageErrors(missing)
    errors: dict[str, str] = dict(missing)
    counts = _write_all_shards(splits, relabeling, output_directory, params.num_shards, errors,
                               params.skip_missing_images, progress)
    if errors:
        progress(f"Skipped {len(errors)} missing or unreadable image(s): "
                 + ", ".join(sorted(errors)[:20]) + (" ..." if len(errors) > 20 else ""))
    progress("Done: " + ", ".join(f"{name}: {n} records" for name, n in counts.items()))
    return counts


def _read_splits(params: ImageDatasetParams):
    """({split name: entries}, relabeling or None) from the CSV files."""
    train_clean_csv_path, train_csv_path = params.train_clean_csv_path, params.train_csv_path
    train_directory, seed = params.train_directory, params.seed
    splits: dict[str, list[ImageEntry]] = {}
    relabeling = None
    if train_clean_csv_path:
        entries, relabeling = ReadCleanTrainCsv(train_clean_csv_path, train_directory)
    elif train_csv_path:
        entries = ReadTrainCsv(train_csv_path, train_directory)
    else:
        entries = []
    if (train_clean_csv_path or train_csv_path) and not entries:
        raise ValueError(f"{train_clean_csv_path or train_csv_path} lists no images")
    if entries:
        if params.generate_train_validation_splits:
            splits["train"], splits["validation"] = SplitTrainValidation(
                    entries, params.validation_split_size, seed)
        else:
            splits["train"] = _shuffled(entries, np.random.default_rng(seed))
    if params.test_csv_path:
        if not params.test_directory:
            raise ValueError("test_csv_path is set but test_directory is not")
        splits["test"] = ReadTestCsv(params.test_csv_path, params.test_directory)
    if not splits:
        raise ValueError("Nothing to build: give train_csv_path, train_clean_csv_path "
                         "or test_csv_path")
    return splits, relabeling


def _write_all_shards(splits, relabeling, output_directory, num_shards, errors,
                      skip_missing_images, progress) -> dict[str, int]:
    """Writes every split's shards (and the relabeling file) all or nothing;
    `errors` gains the images that could not be read."""
    missing = set(errors)
    writer = _ShardWriter(output_directory)
    writer.remove_stale_temporary_files()
    counts = {}
    try:
        for name, split in splits.items():
            listed = len(split)
            split = [entry for entry in split if entry.image_id not in missing]
            counts[name] = WriteShards(name, split, writer, num_shards, errors, progress)
            if counts[name] == 0 and (skip_missing_images or not errors):
                raise ValueError(
                        f"The {name} split has no usable image ({listed} listed, "
                        f"{listed - counts[name]} missing or unreadable); nothing was written "
                        f"to {output_directory}")
        if errors and not skip_missing_images:
            raise ImageErrors(errors)
        if relabeling is not None:
            # Swapped in with the shards, so labels and shards always come from one build.
            writer.write_file(RELABELING_FILENAME, _relabeling_csv(relabeling))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return counts

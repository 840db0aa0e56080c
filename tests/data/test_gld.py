"""Tests for delf_tf.data.gld (the tf.data reader) on records written by the builder."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delf_tf.data import builder, gld
from delf_tf.models import normalize_images
from tests.conftest import write_gld_records

_MODES = ["RGB", "L", "CMYK", "RGB", "RGB", "L", "RGB", "CMYK", "RGB", "RGB", "RGB", "RGB"]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> str:
    """Two train shards of 12 labelled images (grayscale and CMYK JPEGs among them)."""
    rng = np.random.default_rng(0)

    def images():
        for i, mode in enumerate(_MODES):
            height, width = rng.integers(30, 60, size=2)
            channels = {"RGB": 3, "L": 1, "CMYK": 4}[mode]
            pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
            yield f"im{i}", Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels,
                                            mode), i % 3

    data = write_gld_records(tmp_path_factory.mktemp("gld_reader"), images(), num_shards=2)
    return os.path.join(data, "train-*")


def _first_batches(dataset: tf.data.Dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


def test_batches_are_normalised_and_labelled(records):
    dataset = gld.CreateDataset(records, image_size=24, batch_size=5, augmentation=True, seed=1)
    assert dataset.element_spec[0].shape.as_list() == [5, 24, 24, 3]
    for images, labels in _first_batches(dataset, 6):  # > one epoch: repeats
        assert images.dtype == np.float32 and labels.dtype == np.int32
        # (x - 128) / 128 of values in [0, 255]; area resizing adds float rounding.
        assert images.min() >= -1.0 - 1e-5 and images.max() <= 127.0 / 128.0 + 1e-5
        assert set(labels) <= {0, 1, 2}


def test_one_pass_reads_every_record_once(records):
    dataset = gld.CreateDataset(records, image_size=16, batch_size=4, repeat=False,
                                drop_remainder=False)
    labels = np.concatenate([labels for _, labels in _first_batches(dataset, 100)])
    assert sorted(labels) == sorted(i % 3 for i in range(len(_MODES)))


def test_without_augmentation_the_whole_image_is_resized(records):
    dataset = gld.CreateDataset(records, image_size=20, batch_size=1, repeat=False,
                                shuffle_buffer_size=0, deterministic=True)
    path = sorted(tf.io.gfile.glob(records))[0]
    first = gld.ParseExample(next(iter(tf.data.TFRecordDataset(path))))
    decoded = tf.io.decode_jpeg(first["image/encoded"], channels=3)
    expected = normalize_images(tf.image.resize(decoded, [20, 20])).numpy()
    image, label = _first_batches(dataset, 1)[0]
    np.testing.assert_allclose(image[0], expected, atol=1e-6)
    assert label[0] == first["image/class/label"].numpy()


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grayscale_and_cmyk_decode_to_rgb(tmp_path, mode):
    pixels = np.full((8, 6, 1 if mode == "L" else 4), 100, np.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(path)
    expected = np.asarray(Image.open(path).convert("RGB"))
    decoded = gld.DecodeImage(path.read_bytes()).numpy()
    assert decoded.shape == (8, 6, 3)
    # libjpeg and Pillow may differ by a rounding step in colour conversion.
    assert np.abs(decoded.astype(int) - expected).max() <= 2


def test_seed_makes_augmented_batches_reproducible(records):
    def batches(seed):
        dataset = gld.CreateDataset(records, image_size=16, batch_size=4, augmentation=True,
                                    seed=seed, deterministic=True)
        return _first_batches(dataset, 4)

    first, again, other = batches(7), batches(7), batches(8)
    for (images_a, labels_a), (images_b, labels_b) in zip(first, again):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_augmentation_crops(records):
    """A crop resized to the output differs from the plainly resized whole image."""
    encoded = next(iter(tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(records))[0])))
    encoded = gld.ParseExample(encoded)["image/encoded"]
    plain = gld.PreprocessImage(encoded, 16, augmentation=False).numpy()
    crops = [gld.PreprocessImage(encoded, 16, augmentation=True,
                                 seed=tf.constant([3, k], tf.int64)).numpy() for k in range(4)]
    assert all(crop.shape == (16, 16, 3) for crop in crops)
    assert not any(np.allclose(crop, plain) for crop in crops)
    assert not np.allclose(crops[0], crops[1])


def test_input_pipelines_split_the_records(records):
    def labels_of(pipeline_id):
        dataset = gld.CreateDataset(records, image_size=8, batch_size=1, repeat=False,
                                    num_input_pipelines=2, input_pipeline_id=pipeline_id)
        return [int(labels[0]) for _, labels in _first_batches(dataset, 100)]

    # Two shards and two pipelines: one shard each.
    assert sorted(labels_of(0) + labels_of(1)) == sorted(i % 3 for i in range(len(_MODES)))
    assert len(labels_of(0)) == len(_MODES) // 2


def test_records_without_label_read_as_minus_one(tmp_path):
    path = str(tmp_path / "test-00000-of-00001")
    pixels = np.zeros((4, 4, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "t.jpg")
    entry = builder.ImageEntry("t", str(tmp_path / "t.jpg"))
    with tf.io.TFRecordWriter(path) as writer:
        example = builder.MakeExample(entry, (tmp_path / "t.jpg").read_bytes(), 4, 4, "JPEG")
        writer.write(example.SerializeToString())
    _, labels = _first_batches(gld.CreateDataset(path, 8, 1, repeat=False), 1)[0]
    assert labels.tolist() == [-1]


def test_errors():
    with pytest.raises(ValueError, match="No files match"):
        gld.CreateDataset("/nonexistent/train*")
    with pytest.raises(ValueError, match="gld_v3"):
        gld.GetNumberOfClasses("gld_v3")
    assert gld.GetNumberOfClasses("gld_v2_clean") == 81313


def test_only_empty_files_are_an_error_not_a_hang(tmp_path):
    for name in ("train-00000-of-00002", "train-00001-of-00002"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(ValueError, match="is empty \\(0 bytes\\).*train-00000-of-00002"):
        gld.CreateDataset(str(tmp_path / "train*"), image_size=8, batch_size=1)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_shard_is_named(records, tmp_path, damage):
    import shutil

    for path in tf.io.gfile.glob(records):
        shutil.copy(path, tmp_path)
    bad = tmp_path / "train-00001-of-00002"
    data = bad.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[:len(data) - 100])
    else:  # bytes flipped inside a record: its checksum no longer matches
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes(255 - b for b in data[middle:middle + 8])
                        + data[middle + 8:])
    pattern = str(tmp_path / "train-*")
    dataset = gld.CreateDataset(pattern, image_size=16, batch_size=1, repeat=False,
                                shuffle_buffer_size=0)
    with pytest.raises(tf.errors.DataLossError) as raised:
        for _ in dataset:
            pass
    error = gld.CorruptRecordsError(pattern, raised.value)
    assert str(error).startswith(f"Truncated or corrupt TFRecord file {bad} (matched by ")
    assert "train-00000" not in str(error) and "function_node" not in str(error)
    assert {"truncated": "): truncated record at ",
            "corrupt": "): corrupted record at "}[damage] in str(error)

"""feature_io: (y, x) locations, defaults, empty input, files, bad input."""

import os
import pathlib

import numpy as np
import pytest

from delf_tf.io import atomic, feature_io


def _features(num=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    locations = rng.random([num, 2]) * 100
    scales = rng.random([num])
    descriptors = rng.random([num, dim])
    attention = rng.random([num])
    orientations = rng.random([num])
    return locations, scales, descriptors, attention, orientations


def test_round_trip_float64_arrays():
    arrays = _features()
    out = feature_io.ParseFromString(feature_io.SerializeToString(*arrays))
    assert len(out) == 5
    for expected, got in zip(arrays, out):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_locations_are_y_then_x():
    proto = feature_io.ArraysToDelfFeatures(
        np.array([[10.0, 20.0]]), np.ones(1), np.ones([1, 2]), np.array([0.5]))
    assert proto.feature[0].y == 10.0
    assert proto.feature[0].x == 20.0
    assert proto.feature[0].strength == 0.5
    assert list(proto.feature[0].descriptor.shape.dim) == [2]


def test_orientations_default_to_zeros():
    locations, scales, descriptors, attention, _ = _features()
    out = feature_io.ParseFromString(
        feature_io.SerializeToString(locations, scales, descriptors, attention))
    np.testing.assert_array_equal(out[4], np.zeros(4))


def test_zero_features_give_five_empty_arrays(tmp_path):
    path = str(tmp_path / "empty.delf")
    feature_io.WriteToFile(path, np.zeros([0, 2]), np.zeros([0]), np.zeros([0, 40]),
                           np.zeros([0]))
    out = feature_io.ReadFromFile(path)
    assert len(out) == 5
    assert all(arr.size == 0 for arr in out)


def test_binarized_descriptors_round_trip_as_uint8(tmp_path):
    locations, scales, _, attention, _ = _features(num=3)
    packed = np.packbits(np.random.default_rng(1).random([3, 128]) > 0.5, axis=1)
    path = str(tmp_path / "binary.delg_local")
    feature_io.WriteToFile(path, locations, scales, packed, attention)
    out = feature_io.ReadFromFile(path)
    assert out[2].dtype == np.uint8
    np.testing.assert_array_equal(out[2], packed)


def test_file_round_trip(tmp_path):
    arrays = _features(num=10, dim=40)
    path = str(tmp_path / "img.delf")
    feature_io.WriteToFile(path, *arrays)
    for expected, got in zip(arrays, feature_io.ReadFromFile(path)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_mismatched_lengths_are_an_error():
    locations, scales, descriptors, attention, _ = _features(num=4)
    with pytest.raises(ValueError, match="attention"):
        feature_io.ArraysToDelfFeatures(locations, scales, descriptors, attention[:3])


@pytest.mark.parametrize("content", [b"\x0a\xff\xff\xff\xff\x0f", b"not a protobuf at all"])
def test_corrupt_or_truncated_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.delf"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.delf"):
        feature_io.ReadFromFile(str(path))


def test_truncated_real_file_names_the_file(tmp_path):
    data = feature_io.SerializeToString(*_features(num=5))
    path = tmp_path / "cut.delf"
    path.write_bytes(data[: len(data) // 2 + 3])
    with pytest.raises(ValueError, match="cut.delf"):
        feature_io.ReadFromFile(str(path))


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = str(tmp_path / "keep.delf")
    feature_io.WriteToFile(path, *_features(num=2))
    before = pathlib.Path(path).read_bytes()

    real_replace = os.replace

    def crash_on_replace(src, dst):
        raise OSError("crash during rename")

    monkeypatch.setattr(os, "replace", crash_on_replace)
    with pytest.raises(OSError):
        feature_io.WriteToFile(path, *_features(num=7))
    monkeypatch.setattr(os, "replace", real_replace)
    assert pathlib.Path(path).read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.delf"]
    with pytest.raises(FileNotFoundError):
        atomic.read_bytes(str(tmp_path / "nope.delf"))


@pytest.mark.parametrize("array", ["locations", "scales", "descriptors", "attention"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values_are_refused_naming_the_file(tmp_path, array, value):
    arrays = {"locations": np.ones([3, 2]), "scales": np.ones(3),
              "descriptors": np.ones([3, 4]), "attention": np.ones(3)}
    arrays[array].flat[-1] = value
    path = str(tmp_path / "bad.delf")
    feature_io.WriteToFile(path, arrays["locations"], arrays["scales"], arrays["descriptors"],
                           arrays["attention"])
    with pytest.raises(ValueError, match=f"bad.delf: {array} hold NaN or Inf"):
        feature_io.ReadFromFile(path)

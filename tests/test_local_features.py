"""LocalFeatures, the one local-features type, and feature_io's original
functions pinned to the engine that reads and writes it."""

import dataclasses

import numpy as np
import pytest

from delf_tf.io import feature_io
from delf_tf.local_features import LocalFeatures
from delf_tf.matching import reranking


def _arrays(num=6, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random([num, 2]) * 100, rng.random([num]), rng.random([num, dim]),
            rng.random([num]), rng.random([num]))


def test_frozen_checked_and_readable_by_the_original_keys():
    features = LocalFeatures(*_arrays())
    with pytest.raises(dataclasses.FrozenInstanceError):
        features.locations = np.zeros([6, 2])
    assert len(features) == 6
    for name, array in zip(LocalFeatures.FIELDS, features.arrays()):
        assert features[name] is array
    assert features["strengths"] is features.attention
    with pytest.raises(KeyError):
        features["boxes"]
    locations, scales, descriptors, attention, orientations = _arrays()
    with pytest.raises(ValueError, match="attention has 5 entries but locations has 6"):
        LocalFeatures(locations, scales, descriptors, attention[:5], orientations)
    with pytest.raises(ValueError, match=r"locations must be \[N, 2\]"):
        LocalFeatures(np.zeros([6, 3]), scales, descriptors, attention, orientations)


def test_original_functions_are_wrappers_over_the_engine(tmp_path):
    arrays = _arrays()
    features = LocalFeatures(*arrays)
    engine_path, wrapper_path = str(tmp_path / "engine.delf"), str(tmp_path / "wrapper.delf")
    feature_io.write_features(engine_path, features)
    feature_io.WriteToFile(wrapper_path, *arrays)
    with open(engine_path, "rb") as a, open(wrapper_path, "rb") as b:
        assert a.read() == b.read()
    assert feature_io.SerializeToString(*arrays) == feature_io.serialize_features(features)
    assert feature_io.ArraysToDelfFeatures(*arrays) == feature_io.features_to_proto(features)

    read = feature_io.read_features(engine_path)
    assert all(a.dtype == np.float32 for a in read.arrays())
    original = feature_io.ReadFromFile(engine_path)
    assert len(original) == 5
    for got, engine in zip(original, read.arrays()):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, engine)
    parsed = feature_io.ParseFromString(feature_io.serialize_features(features))
    for got, engine in zip(parsed, read.arrays()):
        np.testing.assert_array_equal(got, engine)


def test_matching_reads_the_same_type(tmp_path):
    path = str(tmp_path / "a.delg_local")
    locations, scales, descriptors, attention, _ = _arrays(dim=16)
    feature_io.WriteToFile(path, locations, scales, descriptors, attention)
    features = reranking.read_local_features(path)
    assert isinstance(features, LocalFeatures) and reranking.LocalFeatures is LocalFeatures
    assert features.matching_locations.dtype == np.float64
    np.testing.assert_array_equal(features.matching_descriptors.raw, features.descriptors)
    empty = feature_io.read_features(_empty(tmp_path))
    assert len(empty) == 0 and empty.locations.shape == (0, 2)


def _empty(tmp_path) -> str:
    path = str(tmp_path / "empty.delf")
    feature_io.write_features(path, LocalFeatures.empty(40))
    return path

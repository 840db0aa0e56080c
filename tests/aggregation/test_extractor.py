"""Hand-computed VLAD / ASMK / ASMK* (and regional) aggregations."""

import subprocess
import sys

import numpy as np
import pytest

from delf_tf.aggregation import functional, word_screen
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.protos import aggregation_config_pb2

Config = aggregation_config_pb2.AggregationConfig

# Three 2-D codewords and four features; nearest words 0, 1, 1, 2 with
# residuals (.2,.1), (-.1,.3), (.2,-.1), (.1,-.2).
CODEBOOK = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
FEATURES = np.array([[0.2, 0.1], [0.9, 0.3], [1.2, -0.1], [0.1, 0.8]])


def _extractor(aggregation_type, codebook=CODEBOOK, **kwargs) -> ExtractAggregatedRepresentation:
    config = Config(codebook_size=len(codebook), feature_dimensionality=codebook.shape[1],
                    aggregation_type=aggregation_type, **kwargs)
    return ExtractAggregatedRepresentation(config, codebook=codebook)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_assign_single_and_multiple():
    np.testing.assert_array_equal(functional.assign(FEATURES, CODEBOOK, 1), [[0], [1], [1], [2]])
    np.testing.assert_array_equal(
        functional.assign(FEATURES, CODEBOOK, 2), [[0, 1], [1, 0], [1, 0], [2, 0]])
    np.testing.assert_array_equal(
        functional.assign(FEATURES, CODEBOOK, 3), [[0, 1, 2], [1, 0, 2], [1, 0, 2], [2, 0, 1]])


def test_assign_batch_size_does_not_change_result():
    rng = np.random.default_rng(0)
    features = rng.normal(size=[57, 16])
    codebook = rng.normal(size=[40, 16]).astype(np.float32)
    expected = functional.assign(features, codebook, 3, batch_size=0)
    for batch_size in (1, 10, 100):
        np.testing.assert_array_equal(
            functional.assign(features, codebook, 3, batch_size=batch_size), expected)
    # Brute force with full distances.
    distances = ((features[:, None, :] - codebook[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(expected, np.argsort(distances, axis=1)[:, :3])


@pytest.mark.parametrize("backend", ["numpy", "tensorflow", "bfloat16 screen"])
def test_nearest_words_ties_go_to_the_lower_id_and_distances_are_squared_l2(backend,
                                                                           monkeypatch):
    # Searches of at least _TENSORFLOW_MIN_SCORES scores run in TensorFlow, smaller in NumPy;
    # single-word ones through the bfloat16 screen where it is on (here in groups of 4 words).
    monkeypatch.setattr(functional, "_TENSORFLOW_MIN_SCORES", 0 if backend != "numpy"
                        else 2**62)
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "on" if backend == "bfloat16 screen" else "off")
    monkeypatch.setattr(functional, "_SCREEN_MIN_WORDS", 0)
    monkeypatch.setattr(word_screen, "WORDS_PER_GROUP", 4)
    rng = np.random.default_rng(1)
    words = rng.normal(size=[30, 8]).astype(np.float32)
    # Every word twice (ids i and 59 - i hold the same vector): each tie must go to the lower id.
    codebook = np.concatenate([words, words[::-1]])
    features = rng.normal(size=[500, 8]).astype(np.float32)
    distances = ((features[:, None, :] - codebook[None]) ** 2).sum(-1)
    expected = np.argsort(distances, axis=1, kind="stable")
    for num_assignments in (1, 4, 12):
        nearest, squared = functional.nearest_words(features, codebook, num_assignments)
        np.testing.assert_array_equal(nearest, expected[:, :num_assignments])
        np.testing.assert_allclose(squared, np.take_along_axis(distances, nearest, axis=1),
                                   atol=1e-4)
    with pytest.raises(ValueError, match=r"num_assignments must be in \[1, 60\]"):
        functional.nearest_words(features, codebook, 61)


def test_small_searches_do_not_load_tensorflow():
    code = ("import sys; import numpy as np; from delf_tf.aggregation import functional as f; "
            "rng = np.random.default_rng(0); "
            "f.assign(rng.normal(size=[1000, 128]), rng.normal(size=[1024, 128]), 5); "
            "assert 'tensorflow' not in sys.modules, 'a small search imported TensorFlow'; "
            "f.assign(rng.normal(size=[8192, 8]), rng.normal(size=[8192, 8]).astype('f4')); "
            "assert 'tensorflow' in sys.modules, 'a large search did not use TensorFlow'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_vlad():
    data, words = _extractor(Config.VLAD, use_l2_normalization=False).Extract(FEATURES)
    np.testing.assert_allclose(data, [0.2, 0.1, 0.1, 0.2, 0.1, -0.2], atol=1e-6)
    assert words == -1  # visual words do not apply to VLAD (as the original)
    data, _ = _extractor(Config.VLAD).Extract(FEATURES)
    np.testing.assert_allclose(data, _unit([0.2, 0.1, 0.1, 0.2, 0.1, -0.2]), atol=1e-6)
    assert data.dtype == np.float32 and data.shape == (6,)


def test_vlad_multiple_assignment():
    data, _ = _extractor(Config.VLAD, use_l2_normalization=False, num_assignments=2).Extract(
        FEATURES)
    # Word 0 also gets f1..f3 as second-nearest, word 1 also f0.
    np.testing.assert_allclose(data, [2.4, 1.1, -0.7, 0.3, 0.1, -0.2], atol=1e-6)


def test_asmk():
    data, words = _extractor(Config.ASMK).Extract(FEATURES)
    np.testing.assert_array_equal(words, [0, 1, 2])
    assert words.dtype == np.int32 and data.dtype == np.float32
    np.testing.assert_allclose(
        data.reshape(3, 2), [_unit([0.2, 0.1]), _unit([0.1, 0.2]), _unit([0.1, -0.2])],
        atol=1e-6)


def test_asmk_multiple_assignment():
    data, words = _extractor(Config.ASMK, num_assignments=2).Extract(FEATURES)
    np.testing.assert_array_equal(words, [0, 1, 2])
    np.testing.assert_allclose(
        data.reshape(3, 2), [_unit([2.4, 1.1]), _unit([-0.7, 0.3]), _unit([0.1, -0.2])],
        atol=1e-6)


@pytest.mark.parametrize("aggregation_type", [Config.VLAD, Config.ASMK, Config.ASMK_STAR])
@pytest.mark.parametrize("num_assignments", [1, 3])
def test_extract_many_equals_extract_of_each_image(aggregation_type, num_assignments):
    rng = np.random.default_rng(7)
    codebook = rng.normal(size=[16, 8]).astype(np.float32)
    images = [rng.normal(size=[n, 8]).astype(np.float32) for n in (30, 0, 1, 45)]
    images.append(np.array([[0.1] * 8, [-0.1] * 8]) + codebook[5])  # residuals cancel
    extractor = _extractor(aggregation_type, codebook, num_assignments=num_assignments)
    many = extractor.ExtractMany(images)
    assert len(many) == len(images)
    for (data, words), image in zip(many, images):
        expected_data, expected_words = extractor.Extract(image)
        np.testing.assert_array_equal(data, expected_data)
        np.testing.assert_array_equal(words, expected_words)
        assert data.dtype == expected_data.dtype
        assert np.asarray(words).dtype == np.asarray(expected_words).dtype


def test_asmk_drops_words_whose_residuals_cancel():
    features = np.array([[0.1, 0.0], [-0.1, 0.0], [0.9, 0.2]])
    data, words = _extractor(Config.ASMK).Extract(features)
    np.testing.assert_array_equal(words, [1])
    np.testing.assert_allclose(data, _unit([-0.1, 0.2]), atol=1e-6)


def test_asmk_star_packs_sign_bits():
    codebook = np.stack([np.zeros(8), np.full(8, 10.0)]).astype(np.float32)
    features = np.array([[1, -1, 2, -2, 0.5, -0.5, 3, -3],
                         10 + np.array([-1, 1, -1, 1, -1, 1, -1, 1.0])])
    data, words = _extractor(Config.ASMK_STAR, codebook=codebook).Extract(features)
    np.testing.assert_array_equal(words, [0, 1])
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, [0b10101010, 0b01010101])


@pytest.mark.parametrize("aggregation_type", [Config.VLAD, Config.ASMK, Config.ASMK_STAR])
@pytest.mark.parametrize("regional", [False, True])
def test_empty_features(aggregation_type, regional):
    codebook = np.eye(8, dtype=np.float32)[:3]
    extractor = _extractor(aggregation_type, codebook=codebook,
                           use_regional_aggregation=regional)
    for empty in (np.zeros([0, 8]), np.zeros([0])):
        data, words = extractor.Extract(empty, np.array([0, 0]) if regional else None)
        if aggregation_type == Config.VLAD:
            assert words == -1
            np.testing.assert_array_equal(data, np.zeros(24))
        else:
            assert words.size == 0 and data.size == 0
            assert data.dtype == (np.uint8 if aggregation_type == Config.ASMK_STAR
                                  else np.float32)


def test_regional_vlad_with_empty_region():
    regions = np.array([2, 0, 2])
    region_0 = np.array([0.2, 0.1, -0.1, 0.3, 0, 0])
    region_2 = np.array([0, 0, 0.2, -0.1, 0.1, -0.2])
    data, _ = _extractor(Config.VLAD, use_regional_aggregation=True).Extract(FEATURES, regions)
    np.testing.assert_allclose(data, _unit(_unit(region_0) + _unit(region_2)), atol=1e-6)
    data, _ = _extractor(Config.VLAD, use_regional_aggregation=True,
                         use_l2_normalization=False).Extract(FEATURES, regions)
    # Unnormalised: the mean of the normalised regional VLADs, the empty region counted.
    np.testing.assert_allclose(data, (_unit(region_0) + _unit(region_2)) / 3, atol=1e-6)


def test_regional_asmk_with_empty_region():
    data, words = _extractor(Config.ASMK, use_regional_aggregation=True).Extract(
        FEATURES, np.array([2, 0, 2]))
    np.testing.assert_array_equal(words, [0, 1, 2])
    # Each region's residual sums are divided by the norm of the region's whole VLAD.
    expected_word_1 = _unit(np.array([-0.1, 0.3]) / np.sqrt(0.15)
                            + np.array([0.2, -0.1]) / np.sqrt(0.1))
    np.testing.assert_allclose(
        data.reshape(3, 2), [_unit([0.2, 0.1]), expected_word_1, _unit([0.1, -0.2])], atol=1e-6)


def test_regional_asmk_single_region_equals_asmk():
    rng = np.random.default_rng(1)
    codebook = rng.normal(size=[20, 16]).astype(np.float32)
    features = rng.normal(size=[50, 16])
    for aggregation_type in (Config.ASMK, Config.ASMK_STAR):
        plain = _extractor(aggregation_type, codebook=codebook, num_assignments=2).Extract(
            features)
        regional = _extractor(aggregation_type, codebook=codebook, num_assignments=2,
                              use_regional_aggregation=True).Extract(features, np.array([50]))
        np.testing.assert_array_equal(plain[1], regional[1])
        np.testing.assert_allclose(plain[0], regional[0], atol=1e-6)


@pytest.mark.parametrize("aggregation_type", [Config.VLAD, Config.ASMK, Config.ASMK_STAR])
def test_region_count_errors(aggregation_type):
    codebook = np.eye(8, dtype=np.float32)[:3]
    features = np.eye(8)[:4]
    regional = _extractor(aggregation_type, codebook=codebook, use_regional_aggregation=True)
    with pytest.raises(ValueError, match="sums to 3 but there are 4"):
        regional.Extract(features, np.array([1, 2]))
    with pytest.raises(ValueError, match="requires num_features_per_region"):
        regional.Extract(features)
    with pytest.raises(ValueError, match="negative"):
        regional.Extract(features, np.array([5, -1]))
    with pytest.raises(ValueError, match="use_regional_aggregation is false"):
        _extractor(aggregation_type, codebook=codebook).Extract(features, np.array([4]))


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="does not match the config"):
        ExtractAggregatedRepresentation(
            Config(codebook_size=4, feature_dimensionality=2, aggregation_type=Config.ASMK),
            codebook=CODEBOOK)
    with pytest.raises(ValueError, match="num_assignments"):
        _extractor(Config.ASMK, num_assignments=4)
    with pytest.raises(ValueError, match="Invalid aggregation_type"):
        _extractor(Config.INVALID)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        _extractor(Config.ASMK).Extract(np.zeros([3, 5]))
    with pytest.raises(FileNotFoundError, match="nowhere.datum"):
        ExtractAggregatedRepresentation(Config(codebook_path="/nowhere.datum"))

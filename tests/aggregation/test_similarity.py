"""Hand-computed VLAD / ASMK / ASMK* similarities."""

import numpy as np
import pytest

from delf_tf.aggregation import functional
from delf_tf.aggregation.similarity import SimilarityAggregatedRepresentation
from delf_tf.protos import aggregation_config_pb2

Config = aggregation_config_pb2.AggregationConfig

# Words 2 and 5 are shared; both have u = 0.8, so sigma = 0.8^3 = 0.512.
ASMK_1 = (np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]).reshape(-1), np.array([0, 2, 5]))
ASMK_2 = (np.array([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]]).reshape(-1), np.array([2, 3, 5]))


def _similarity(aggregation_type, dim, **kwargs) -> SimilarityAggregatedRepresentation:
    return SimilarityAggregatedRepresentation(
        Config(aggregation_type=aggregation_type, feature_dimensionality=dim, **kwargs))


def test_vlad_dot_product():
    similarity = _similarity(Config.VLAD, 1, codebook_size=3)
    assert similarity.ComputeSimilarity(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == 32.0
    with pytest.raises(ValueError, match="dimensionality mismatch"):
        similarity.ComputeSimilarity(np.array([1.0, 2, 3]), np.array([4.0, 5]))


def test_asmk_with_and_without_normalization():
    data_1, words_1 = ASMK_1
    data_2, words_2 = ASMK_2
    normalized = _similarity(Config.ASMK, 2)
    assert normalized.ComputeSimilarity(data_1, data_2, words_1, words_2) == pytest.approx(
        1.024 / 3)
    plain = _similarity(Config.ASMK, 2, use_l2_normalization=False)
    assert plain.ComputeSimilarity(data_1, data_2, words_1, words_2) == pytest.approx(1.024)
    # Symmetric, and alpha changes the selectivity: 2 * 0.8 = 1.6 with alpha 1.
    assert plain.ComputeSimilarity(data_2, data_1, words_2, words_1) == pytest.approx(1.024)
    linear = _similarity(Config.ASMK, 2, use_l2_normalization=False, alpha=1.0)
    assert linear.ComputeSimilarity(data_1, data_2, words_1, words_2) == pytest.approx(1.6)


def test_asmk_threshold_and_negative_similarities():
    above_threshold = _similarity(Config.ASMK, 2, use_l2_normalization=False, tau=0.85)
    assert above_threshold.ComputeSimilarity(*ASMK_1[:1], *ASMK_2[:1], ASMK_1[1],
                                             ASMK_2[1]) == 0.0
    # u = -0.5 passes tau = -1 and keeps its sign: -0.5^3.
    negative = _similarity(Config.ASMK, 2, use_l2_normalization=False, tau=-1.0)
    assert negative.ComputeSimilarity(
        np.array([1.0, 0.0]), np.array([-0.5, np.sqrt(0.75)]),
        np.array([7]), np.array([7])) == pytest.approx(-0.125)


def test_asmk_star_hamming():
    similarity = _similarity(Config.ASMK_STAR, 8)
    # Word 1: one bit differs, u = 1 - 2/8 = 0.75; word 4: all bits differ, u = -1.
    data_1 = np.array([0b11110000, 0b00000000], dtype=np.uint8)
    data_2 = np.array([0b11110001, 0b11111111, 0b10101010], dtype=np.uint8)
    words_1, words_2 = np.array([1, 4]), np.array([1, 4, 7])
    assert similarity.ComputeSimilarity(data_1, data_2, words_1, words_2) == pytest.approx(
        0.75 ** 3 / np.sqrt(6))
    # uint32 is how the bytes come back from a DatumProto file.
    assert similarity.ComputeSimilarity(
        data_1.astype(np.uint32), data_2, words_1, words_2) == pytest.approx(0.75 ** 3 / np.sqrt(6))


def test_hamming_similarity_matches_unpacked_bits():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=[2, 10, 16], dtype=np.uint8)
    signs = np.unpackbits(codes, axis=-1).astype(np.float64) * 2 - 1
    expected = (signs[0] * signs[1]).sum(-1) / 128
    np.testing.assert_allclose(functional.hamming_similarity(codes[0], codes[1], 128), expected)


@pytest.mark.parametrize("aggregation_type,dim", [(Config.ASMK, 2), (Config.ASMK_STAR, 8)])
def test_no_visual_words_gives_minus_one(aggregation_type, dim):
    similarity = _similarity(aggregation_type, dim)
    dtype = np.uint8 if aggregation_type == Config.ASMK_STAR else np.float32
    some = (np.ones([dim if aggregation_type == Config.ASMK else 1], dtype=dtype), np.array([3]))
    none = (np.zeros([0], dtype=dtype), np.zeros([0], dtype=np.int32))
    assert similarity.ComputeSimilarity(some[0], none[0], some[1], none[1]) == -1.0
    assert similarity.ComputeSimilarity(none[0], some[0], none[1], some[1]) == -1.0
    assert similarity.ComputeSimilarity(none[0], none[0], none[1], none[1]) == -1.0


def test_asmk_dimensionality_mismatch():
    similarity = _similarity(Config.ASMK, 2)
    with pytest.raises(ValueError, match="expected 3 visual words x 2"):
        similarity.ComputeSimilarity(np.ones(5), ASMK_2[0], ASMK_1[1], ASMK_2[1])
    with pytest.raises(ValueError, match="needs visual words"):
        similarity.ComputeSimilarity(ASMK_1[0], ASMK_2[0])
    star = _similarity(Config.ASMK_STAR, 16)
    with pytest.raises(ValueError, match="expected 2 visual words x 2"):
        star.ComputeSimilarity(np.ones(3, np.uint8), np.ones(2, np.uint8),
                               np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="packed uint8"):
        star.ComputeSimilarity(np.ones(2), np.ones(2, np.uint8), np.array([0]), np.array([0]))

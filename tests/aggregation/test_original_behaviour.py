"""The original's outputs on its own small example (codebook of five 2-D words, four
features): regional R-VLAD / R-ASMK, VLAD's -1, ASMK* of dimensionality 2."""

import numpy as np

from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.aggregation.similarity import SimilarityAggregatedRepresentation
from delf_tf.protos import aggregation_config_pb2

Config = aggregation_config_pb2.AggregationConfig
CODEBOOK = np.array([[0.5, 0.5], [0.0, 0.0], [1.0, 0.0], [-0.5, -0.5], [0.0, 1.0]], np.float32)
FEATURES = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 2.0], [0.0, 2.0]], np.float32)
REGIONS = np.array([3, 1])


def extract(aggregation_type, regional, use_l2_normalization=True):
    config = Config(codebook_size=5, feature_dimensionality=2, aggregation_type=aggregation_type,
                    use_regional_aggregation=regional,
                    use_l2_normalization=use_l2_normalization)
    extractor = ExtractAggregatedRepresentation(config, codebook=CODEBOOK)
    return extractor.Extract(FEATURES, REGIONS if regional else None)


def test_regional_vlad_unnormalized_is_mean_of_normalized_region_vlads():
    data, words = extract(Config.VLAD, regional=True, use_l2_normalization=False)
    np.testing.assert_allclose(
            data, [0, 0, 0, 0, 0, 0, -0.158114, 0.158114, 0.316228, 0.816228], atol=1e-6)
    assert words == -1


def test_regional_vlad_with_empty_regions_counts_them():
    config = Config(codebook_size=5, feature_dimensionality=2, aggregation_type=Config.VLAD,
                    use_regional_aggregation=True, use_l2_normalization=False)
    extractor = ExtractAggregatedRepresentation(config, codebook=CODEBOOK)
    data, _ = extractor.Extract(FEATURES, np.array([3, 0, 1, 0]))
    np.testing.assert_allclose(
            data[6:], np.array([-0.158114, 0.158114, 0.316228, 0.816228]) / 2, atol=1e-6)


def test_regional_asmk_weights_each_region_by_its_vlad_norm():
    data, words = extract(Config.ASMK, regional=True)
    np.testing.assert_array_equal(words, [3, 4])
    np.testing.assert_allclose(data, [-0.707107, 0.707107, 0.361261, 0.932465], atol=1e-6)
    data, words = extract(Config.ASMK_STAR, regional=True)
    np.testing.assert_array_equal(words, [3, 4])
    np.testing.assert_array_equal(data, [64, 192])


def test_vlad_second_output_is_minus_one():
    data, words = extract(Config.VLAD, regional=False)
    assert words == -1 and data.shape == (10,)


def test_asmk_star_any_dimensionality():
    data, words = extract(Config.ASMK_STAR, regional=False)
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, [64, 192])
    np.testing.assert_array_equal(words, [3, 4])
    similarity = SimilarityAggregatedRepresentation(Config(
            codebook_size=5, feature_dimensionality=2, aggregation_type=Config.ASMK_STAR,
            use_l2_normalization=True, alpha=3.0, tau=-1.0))
    # Identical images: every shared word has u = 1.
    assert similarity.ComputeSimilarity(data, data, words, words) == 1.0
    # Word 4 opposite (bits 00): u = -1 is not above tau = -1, so (1 + 0) / sqrt(2 * 2).
    assert similarity.ComputeSimilarity(data, np.array([64, 0], np.uint8), words, words) == 0.5

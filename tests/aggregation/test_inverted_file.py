"""The inverted file scores exactly like the pairwise similarity."""

import numpy as np
import pytest

from delf_tf.aggregation import inverted_file as inverted_file_lib
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.similarity import SimilarityAggregatedRepresentation
from delf_tf.protos import aggregation_config_pb2

Config = aggregation_config_pb2.AggregationConfig


def _images(config, num_images, rng):
    codebook = rng.normal(size=[config.codebook_size, config.feature_dimensionality])
    extractor = ExtractAggregatedRepresentation(config, codebook=codebook.astype(np.float32))
    images = []
    for i in range(num_images):
        # Image 3 has no features, so no visual words.
        num_features = 0 if i == 3 else int(rng.integers(1, 40))
        images.append(extractor.Extract(rng.normal(size=[num_features, 16])))
    return images


@pytest.mark.parametrize("aggregation_type", [Config.ASMK, Config.ASMK_STAR])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("entries_per_chunk", [3, 1 << 16])
def test_scores_equal_pairwise_similarity(aggregation_type, normalize, entries_per_chunk,
                                          monkeypatch):
    monkeypatch.setattr(inverted_file_lib, "_ENTRIES_PER_CHUNK", entries_per_chunk)
    config = Config(codebook_size=50, feature_dimensionality=16, aggregation_type=aggregation_type,
                    use_l2_normalization=normalize, num_assignments=2, alpha=3.0, tau=0.1)
    rng = np.random.default_rng(0)
    images = _images(config, 12, rng)
    inverted_file = AsmkInvertedFile(config).Build([d for d, _ in images],
                                                   [w for _, w in images])
    assert inverted_file.num_images == 12
    similarity = SimilarityAggregatedRepresentation(config)
    for query_data, query_words in images[:5]:
        expected = [similarity.ComputeSimilarity(query_data, d, query_words, w)
                    for d, w in images]
        np.testing.assert_allclose(
            inverted_file.ComputeSimilarities(query_data, query_words), expected, atol=1e-9)
    ranking, scores = inverted_file.Search(*images[0], top_k=4)
    assert ranking[0] == 0 and len(ranking) == 4
    assert np.all(np.diff(scores) <= 0)


def test_hand_built_index_and_save_load(tmp_path):
    config = Config(codebook_size=8, feature_dimensionality=8, aggregation_type=Config.ASMK_STAR,
                    use_l2_normalization=False)
    index_data = [np.array([0b11110000, 0b00001111], np.uint8),
                  np.array([0b11110001], np.uint8),
                  np.zeros([0], np.uint8)]
    index_words = [np.array([1, 6]), np.array([1]), np.zeros([0], np.int32)]
    inverted_file = AsmkInvertedFile(config).Build(index_data, index_words)
    assert inverted_file.num_entries == 3
    query = (np.array([0b11110000, 0b00001111], np.uint8), np.array([1, 2]))
    # Image 0 shares word 1 exactly (u = 1); image 1 at one bit (u = 0.75).
    np.testing.assert_allclose(inverted_file.ComputeSimilarities(*query), [1.0, 0.421875, -1.0])
    np.testing.assert_allclose(
        inverted_file.ComputeSimilarities(np.zeros([0], np.uint8), np.zeros([0])), [-1, -1, -1])

    path = str(tmp_path / "index.npz")
    inverted_file.Save(path)
    loaded = AsmkInvertedFile(config).Load(path)
    np.testing.assert_allclose(loaded.ComputeSimilarities(*query), [1.0, 0.421875, -1.0])
    other = Config(codebook_size=16, feature_dimensionality=8, aggregation_type=Config.ASMK_STAR)
    with pytest.raises(ValueError, match="was built for"):
        AsmkInvertedFile(other).Load(path)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="VLAD"):
        AsmkInvertedFile(Config(aggregation_type=Config.VLAD))
    config = Config(codebook_size=4, feature_dimensionality=8, aggregation_type=Config.ASMK_STAR)
    with pytest.raises(ValueError, match="outside"):
        AsmkInvertedFile(config).Build([np.zeros([1], np.uint8)], [np.array([4])])
    with pytest.raises(ValueError, match="expected 1 visual words"):
        AsmkInvertedFile(config).Build([np.zeros([2], np.uint8)], [np.array([1])])

"""Nearest neighbours by matrix products against a KD-tree oracle; Hamming."""

import numpy as np
import pytest
from scipy import spatial

from delf_tf.matching import descriptor_matching


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def descriptors():
    rng = np.random.default_rng(3)
    query = _unit(rng.normal(size=(300, 40)))
    index = _unit(rng.normal(size=(500, 40)))
    # Close partners for a third of the queries, so thresholds keep some.
    index[:100] = _unit(query[:100] + 0.05 * rng.normal(size=(100, 40)))
    return query, index


def test_nearest_neighbors_match_kd_tree(descriptors):
    query, index = descriptors
    distances, indices = descriptor_matching.nearest_neighbors(query, index, k=2)
    tree_distances, tree_indices = spatial.cKDTree(index).query(query, k=2)
    np.testing.assert_array_equal(indices, tree_indices)
    np.testing.assert_allclose(distances, tree_distances, rtol=1e-12, atol=1e-12)


def test_batches_give_the_same_answer(descriptors, monkeypatch):
    query, index = descriptors
    expected = descriptor_matching.nearest_neighbors(query, index, k=2)
    monkeypatch.setattr(descriptor_matching, "_MAX_BATCH_ELEMENTS", 7 * len(index))
    got = descriptor_matching.nearest_neighbors(query, index, k=2)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])


@pytest.mark.parametrize("threshold", [0.5, 0.9, 1.2])
def test_threshold_matching_equals_kd_tree_upper_bound(descriptors, threshold):
    query, index = descriptors
    query_ids, index_ids = descriptor_matching.putative_matches(query, index, threshold)
    _, tree_indices = spatial.cKDTree(index).query(query, distance_upper_bound=threshold)
    keep = tree_indices != len(index)
    np.testing.assert_array_equal(query_ids, np.flatnonzero(keep))
    np.testing.assert_array_equal(index_ids, tree_indices[keep])


def test_ratio_test_equals_kd_tree_ratio(descriptors):
    query, index = descriptors
    query_ids, index_ids = descriptor_matching.putative_matches(
        query, index, 0.8, use_ratio_test=True)
    tree_distances, tree_indices = spatial.cKDTree(index).query(query, k=2)
    keep = tree_distances[:, 0] < 0.8 * tree_distances[:, 1]
    assert 50 < keep.sum() < len(query)
    np.testing.assert_array_equal(query_ids, np.flatnonzero(keep))
    np.testing.assert_array_equal(index_ids, tree_indices[keep, 0])


def test_ratio_test_with_a_single_index_descriptor_keeps_the_match():
    query_ids, index_ids = descriptor_matching.putative_matches(
        np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.8, use_ratio_test=True)
    assert query_ids.tolist() == [0] and index_ids.tolist() == [0]


def test_hamming_distance_is_unit_code_euclidean_distance():
    rng = np.random.default_rng(0)
    query_bits = rng.integers(0, 2, size=(60, 128)).astype(np.uint8)
    index_bits = rng.integers(0, 2, size=(80, 128)).astype(np.uint8)
    index_bits[:20] = query_bits[:20]
    index_bits[:20, :10] ^= 1  # 10 flipped bits: distance 2*sqrt(10/128) = 0.559
    distances, indices = descriptor_matching.nearest_neighbors(
        np.packbits(query_bits, axis=1), np.packbits(index_bits, axis=1), k=2)

    hamming = (query_bits[:, None, :] != index_bits[None]).sum(-1)
    np.testing.assert_array_equal(indices[:, 0], hamming.argmin(axis=1))
    np.testing.assert_allclose(distances[:, 0], 2 * np.sqrt(hamming.min(axis=1) / 128))
    np.testing.assert_allclose(distances[:20, 0], 2 * np.sqrt(10 / 128))
    # The same distances as float matching of the +-1 codes normalised to unit length.
    float_distances, float_indices = descriptor_matching.nearest_neighbors(
        (2.0 * query_bits - 1) / np.sqrt(128), (2.0 * index_bits - 1) / np.sqrt(128), k=2)
    np.testing.assert_allclose(distances, float_distances, atol=1e-9)
    np.testing.assert_array_equal(indices[:20, 0], float_indices[:20, 0])


def test_hamming_threshold_applies_in_euclidean_units():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=(2, 64)).astype(np.uint8)
    other = bits.copy()
    other[0, :15] ^= 1  # 15 < 64/4: distance 0.968 < 1.0, kept
    other[1, :16] ^= 1  # 16 = 64/4: distance exactly 1.0, rejected
    query_ids, index_ids = descriptor_matching.putative_matches(
        np.packbits(bits, axis=1), np.packbits(other, axis=1), threshold=1.0)
    assert query_ids.tolist() == [0] and index_ids.tolist() == [0]


def test_incompatible_descriptors_raise():
    with pytest.raises(ValueError, match="dimensionality is not consistent"):
        descriptor_matching.nearest_neighbors(np.ones((3, 40)), np.ones((3, 128)))
    with pytest.raises(ValueError, match="binarized"):
        descriptor_matching.nearest_neighbors(np.ones((3, 16), np.uint8), np.ones((3, 128)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        descriptor_matching.prepare_descriptors(np.ones((2, 3, 4)))


def test_empty_sides_give_no_matches():
    empty = np.array([])  # what feature_io returns for zero features
    query_ids, _ = descriptor_matching.putative_matches(empty, np.ones((5, 8)), 1.0)
    assert query_ids.size == 0
    distances, indices = descriptor_matching.nearest_neighbors(np.ones((2, 8)), empty, k=2)
    assert np.isinf(distances).all() and (indices == -1).all()

"""Batched global search against a direct full sort."""

import numpy as np
import pytest

from delf_tf.retrieval import search


@pytest.fixture
def descriptors():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(13, 16)).astype(np.float32),
            rng.normal(size=(101, 16)).astype(np.float32))


def test_full_ranking_matches_argsort(descriptors):
    query, index = descriptors
    ranks, scores = search.global_search(query, index)
    expected_scores = query @ index.T
    np.testing.assert_array_equal(ranks, np.argsort(-expected_scores, axis=1, kind="stable"))
    np.testing.assert_allclose(scores, np.sort(expected_scores, axis=1)[:, ::-1], rtol=1e-6)
    assert scores.dtype == np.float32


@pytest.mark.parametrize("max_batch_elements", [1, 50, 300, 10**6])
def test_bounded_batches_give_the_same_top_k(descriptors, max_batch_elements):
    query, index = descriptors
    full_ranks, full_scores = search.global_search(query, index)
    ranks, scores = search.global_search(query, index, top_k=7,
                                         max_batch_elements=max_batch_elements)
    np.testing.assert_array_equal(ranks, full_ranks[:, :7])
    np.testing.assert_allclose(scores, full_scores[:, :7], rtol=1e-6)
    ranks, _ = search.global_search(query, index, max_batch_elements=max_batch_elements)
    np.testing.assert_array_equal(ranks, full_ranks)


def test_ties_are_ordered_by_index_id():
    index = np.array([[1.0, 0], [0, 1], [1, 0], [1, 0]])
    ranks, scores = search.global_search(np.array([[1.0, 0]]), index)
    np.testing.assert_array_equal(ranks, [[0, 2, 3, 1]])
    assert scores.dtype == np.float64
    ranks, _ = search.global_search(np.array([[1.0, 0]]), index, top_k=10)
    np.testing.assert_array_equal(ranks, [[0, 2, 3, 1]])


def test_bad_shapes():
    with pytest.raises(ValueError, match="16-D but index descriptors are 8-D"):
        search.global_search(np.zeros((2, 16)), np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"\[Q, D\]"):
        search.global_search(np.zeros(16), np.zeros((3, 16)))
    ranks, scores = search.global_search(np.zeros((0, 4)), np.zeros((3, 4)))
    assert ranks.shape == (0, 3) and scores.shape == (0, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("top_k", [None, 1, 5, 12, 40])
@pytest.mark.parametrize("max_batch_elements", [7, 64, 10**6])
def test_many_ties_match_a_stable_sort(dtype, top_k, max_batch_elements):
    # Few distinct scores, so ties straddle the top-k and chunk boundaries.
    rng = np.random.default_rng(1)
    index = rng.integers(-2, 3, size=(40, 3)).astype(dtype)
    query = rng.integers(-2, 3, size=(9, 3)).astype(dtype)
    expected_scores = query @ index.T
    expected = np.argsort(-expected_scores, axis=1, kind="stable")[:, :top_k]
    ranks, scores = search.global_search(query, index, top_k=top_k,
                                         max_batch_elements=max_batch_elements)
    np.testing.assert_array_equal(ranks, expected)
    np.testing.assert_array_equal(scores, np.take_along_axis(expected_scores, expected, 1))
    assert scores.dtype == dtype


def test_signed_zeros_tie_and_nan_goes_last():
    index = np.array([[0.0], [-1.0], [np.nan], [1.0], [-0.0], [0.0]], dtype=np.float32)
    ranks, scores = search.global_search(np.ones((1, 1), np.float32), index)
    np.testing.assert_array_equal(ranks, [[3, 0, 4, 5, 1, 2]])
    np.testing.assert_array_equal(scores[0, :5], [1, 0, 0, 0, -1])
    assert np.isnan(scores[0, 5])
    np.testing.assert_array_equal(
        search.global_search(np.ones((1, 1), np.float32), index, top_k=3)[0], [[3, 0, 4]])

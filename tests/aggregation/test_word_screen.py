"""The bfloat16-screened nearest-word search gives the float32 search's words."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.aggregation import functional, word_screen


def _float32_nearest(features, codebook):
    """The reference: every word scored in float32 (NumPy), ties to the lower id."""
    scores = features @ codebook.T - 0.5 * np.einsum("kd,kd->k", codebook, codebook)
    return np.argmax(scores, axis=1), scores.max(axis=1)


def _bursty(rng, num_words=1024, num_features=3000, dim=32):
    """Unit features around shared parts, a quarter of them short clutter (every score
    x.c - |c|^2 / 2 < 0), and a codebook of noisy parts."""
    parts = rng.normal(size=[num_words // 2, dim])
    codebook = parts[rng.integers(0, len(parts), num_words)] + 0.3 * rng.normal(
        size=[num_words, dim])
    codebook /= 1.2 * np.linalg.norm(codebook, axis=1, keepdims=True)
    features = parts[rng.integers(0, len(parts), num_features)] + 0.3 * rng.normal(
        size=[num_features, dim])
    features[: num_features // 4] = rng.normal(size=[num_features // 4, dim])
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    features[: num_features // 4] *= 0.2
    return features.astype(np.float32), codebook.astype(np.float32)


def test_group_order_keeps_clusters_together_in_ascending_ids():
    rng = np.random.default_rng(0)
    centres = 10 * rng.normal(size=[4, 8])
    cluster = rng.integers(0, 4, size=256)
    cluster[:4] = [0, 1, 2, 3]
    counts = np.bincount(cluster, minlength=4)
    # Move words so every cluster has 64: then each group of 64 must be one cluster.
    cluster = np.repeat(np.arange(4), 64)[rng.permutation(256)] if counts.min() != 64 else cluster
    codebook = centres[cluster] + rng.normal(size=[256, 8])
    order = word_screen.group_order(codebook, 64)
    assert sorted(order) == list(range(256))
    for group in order.reshape(4, 64):
        assert len(set(cluster[group])) == 1
        assert (np.diff(group) > 0).all()
    # A size that is not a multiple of the group: full groups first, the short one last.
    order = word_screen.group_order(codebook[:250], 64)
    assert sorted(order) == list(range(250))


@pytest.mark.parametrize("num_words, words_per_group", [(1024, 64), (1000, 128), (300, 512)])
def test_screen_gives_the_float32_words_and_scores(num_words, words_per_group):
    features, codebook = _bursty(np.random.default_rng(1), num_words=num_words)
    words, scores = word_screen.Bfloat16Screen(codebook, words_per_group).nearest(features, 512)
    expected_words, expected_scores = _float32_nearest(features, codebook)
    np.testing.assert_array_equal(words, expected_words)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert (expected_scores[:750] < 0).all()  # the clutter: every group's scores negative
    assert (expected_scores[750:] > 0).mean() > 0.9


def _bfloat16_misranked(features, codebook, expected) -> float:
    """Fraction of features whose largest bfloat16 score is not their nearest word."""
    codebook_aug = np.concatenate([codebook.T, -0.5 * (codebook**2).sum(1)[None]])
    features_aug = np.concatenate([features, np.ones([len(features), 1], np.float32)], axis=1)
    rounded = tf.matmul(tf.cast(features_aug, tf.bfloat16), tf.cast(codebook_aug, tf.bfloat16))
    return np.mean(np.argmax(tf.cast(rounded, tf.float32).numpy(), axis=1) != expected)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_screen_finds_words_the_bfloat16_product_misranks(scale):
    # Words 1e-3 apart around a few centres: their bfloat16 scores cannot tell them apart,
    # so the screen must keep several groups and decide in float32. At scale 0.5 the
    # nearest words score about 0, where the rounding of the inputs (not of the sums)
    # decides.
    rng = np.random.default_rng(2)
    centres = rng.normal(size=[8, 64])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    codebook = (np.repeat(centres, 64, axis=0)
                + 1e-3 * rng.normal(size=[512, 64])).astype(np.float32)
    features = (scale * centres[rng.integers(0, 8, 2000)]
                + 2e-3 * rng.normal(size=[2000, 64])).astype(np.float32)
    words, _ = word_screen.Bfloat16Screen(codebook, 16).nearest(features, 256)
    expected, _ = _float32_nearest(features, codebook)
    np.testing.assert_array_equal(words, expected)
    assert _bfloat16_misranked(features, codebook, expected) > 0.5


def test_screen_gives_a_word_to_features_with_nan():
    features, codebook = _bursty(np.random.default_rng(6), num_words=256, num_features=100)
    features[[3, 50]] = np.nan
    words, _ = word_screen.Bfloat16Screen(codebook, 16).nearest(features, 64)
    assert ((words >= 0) & (words < 256)).all()
    np.testing.assert_array_equal(np.delete(words, [3, 50]),
                                  np.delete(_float32_nearest(features, codebook)[0], [3, 50]))


def test_screen_keeps_groups_whose_rounded_scores_tie():
    # Small integers are exact in bfloat16, so only the sums (up to ~700) are rounded, to
    # steps of 2 to 4, while scores differ by 0.5: many words share their rounded score.
    rng = np.random.default_rng(5)
    codebook = rng.integers(-4, 5, size=[512, 8]).astype(np.float32)
    features = rng.integers(-4, 5, size=[3000, 8]).astype(np.float32) * 8
    words, scores = word_screen.Bfloat16Screen(codebook, 16).nearest(features, 1000)
    expected, expected_scores = _float32_nearest(features, codebook)
    np.testing.assert_array_equal(words, expected)
    np.testing.assert_array_equal(scores, expected_scores)
    assert _bfloat16_misranked(features, codebook, expected) > 0.005


def test_bound_check_holds_on_larger_products_where_it_passes():
    """Where the once-per-process check accepts TensorFlow's bfloat16 product, the bound
    also holds on a larger, differently scaled product."""
    if not word_screen.bfloat16_product_is_bounded():
        pytest.skip("this TensorFlow's bfloat16 product is not summed in float32")
    rng = np.random.default_rng(3)
    a = tf.cast(rng.normal(size=[1000, 129]).astype(np.float32) * 3, tf.bfloat16)
    b = tf.cast(rng.normal(size=[129, 2000]).astype(np.float32) / 7, tf.bfloat16)
    a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    exact = a64 @ b64
    error = np.abs(tf.matmul(a, b).numpy().astype(np.float64) - exact)
    assert (error <= 2.0**-8 * np.abs(exact) + 2 * 129 * 2.0**-24 * (np.abs(a64) @ np.abs(b64))
            ).all()


def test_emulated_bfloat16_products_are_refused_even_when_forced_on():
    # Eigen's bfloat16 product (oneDNN off) is not summed in float32.
    code = ("import os; from delf_tf.aggregation import word_screen as w; "
            "assert not w.bfloat16_product_is_bounded(); assert not w.enabled()")
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", DELF_TF_BFLOAT16_SCREEN="on")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)


def test_large_word_search_uses_the_screen_where_enabled(monkeypatch):
    features, codebook = _bursty(np.random.default_rng(4), num_words=2100, num_features=4000)
    monkeypatch.setattr(functional, "_TENSORFLOW_MIN_SCORES", 2**20)
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "off")
    search = functional.WordSearch(codebook)
    expected = search(features)
    assert "_screen" not in vars(search)
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "on")
    words, distances = search(features)
    assert "_screen" in vars(search)  # prepared: the search went through it
    np.testing.assert_array_equal(words, expected[0])
    np.testing.assert_allclose(distances, expected[1], atol=2e-5)
    search(features, num_assignments=2)  # several words per feature: the float32 search


def test_enabled_follows_the_environment(monkeypatch):
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "on")
    assert word_screen.enabled()
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "off")
    assert not word_screen.enabled()
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "auto")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert not word_screen.enabled()  # emulated bfloat16 products: not worth it
    monkeypatch.setenv("DELF_TF_BFLOAT16_SCREEN", "maybe")
    with pytest.raises(ValueError, match="DELF_TF_BFLOAT16_SCREEN must be auto, on or off"):
        word_screen.enabled()

"""GeM, attention, autoencoder and the cosine/ArcFace classifier on hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import layers as delf_layers


def test_gem_hand_computed():
    x = np.zeros([1, 2, 2, 2], np.float32)
    x[0, :, :, 0] = [[1.0, 2.0], [3.0, 4.0]]
    x[0, :, :, 1] = [[-5.0, 0.0], [0.0, 2.0]]  # negatives clamp to eps
    pooled = delf_layers.gem(tf.constant(x), power=3.0).numpy()
    expected0 = ((1 + 8 + 27 + 64) / 4) ** (1 / 3)
    expected1 = ((3 * 1e-18 + 8) / 4) ** (1 / 3)
    np.testing.assert_allclose(pooled, [[expected0, expected1]], rtol=1e-5)
    layer = delf_layers.GeM(power=3.0)
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), pooled)
    # p = 1 is average pooling.
    np.testing.assert_allclose(delf_layers.gem(tf.constant(x[..., :1]), power=1.0).numpy(),
                               [[2.5]], rtol=1e-6)


def test_cosine_logits_normalises_both_sides():
    embeddings = tf.constant([[3.0, 4.0]])
    weights = tf.constant([[2.0, 0.0, -1.0], [0.0, 5.0, 0.0]])
    np.testing.assert_allclose(delf_layers.cosine_logits(embeddings, weights).numpy(),
                               [[0.6, 0.8, -0.6]], rtol=1e-6)


def test_arcface_margin_on_true_class_only():
    cosine = tf.constant([[0.5, 0.2, -0.3], [0.1, 0.9, 0.4]])
    labels = tf.constant([0, 1])
    logits = delf_layers.arcface_logits(cosine, labels, margin=0.1, scale=2.0).numpy()
    expected = 2.0 * np.array([
            [math.cos(math.acos(0.5) + 0.1), 0.2, -0.3],
            [0.1, math.cos(math.acos(0.9) + 0.1), 0.4]])
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    # Without labels (evaluation) the logits are plain s * cos.
    plain = delf_layers.arcface_logits(cosine, None, margin=0.1, scale=2.0).numpy()
    np.testing.assert_allclose(plain, 2.0 * cosine.numpy(), rtol=1e-6)


def test_arcface_unchanged_beyond_pi_minus_margin():
    margin = 0.1
    # theta = pi - 0.05 > pi - m: unchanged; theta = pi - 0.2 <= pi - m: margin applied.
    beyond = math.cos(math.pi - 0.05)
    within = math.cos(math.pi - 0.2)
    cosine = tf.constant([[beyond, 0.3], [within, 0.3]])
    logits = delf_layers.arcface_logits(cosine, tf.constant([0, 0]), margin, 1.0).numpy()
    assert logits[0, 0] == pytest.approx(beyond, abs=1e-6)
    assert logits[1, 0] == pytest.approx(math.cos(math.pi - 0.2 + margin), abs=1e-5)


@pytest.mark.parametrize("value", [1.0, -1.0])
def test_arcface_finite_at_cos_plus_minus_one(value):
    cosine = tf.Variable([[value, 0.0], [0.0, value]])
    labels = tf.constant([0, 1])
    with tf.GradientTape() as tape:
        logits = delf_layers.arcface_logits(cosine, labels, 0.1, 45.25)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    grad = tape.gradient(loss, cosine)
    assert np.isfinite(loss.numpy())
    assert np.all(np.isfinite(logits.numpy()))
    assert np.all(np.isfinite(grad.numpy()))


def test_arcface_finite_when_embedding_equals_class_weight():
    # Exactly aligned vectors give cos = 1 (up to rounding, possibly above 1).
    weights = tf.Variable([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    embeddings = tf.Variable([[1.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        cosine = delf_layers.cosine_logits(embeddings, weights)
        logits = delf_layers.arcface_logits(cosine, tf.constant([0]), 0.1, 45.25)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits([0], logits))
    grads = tape.gradient(loss, [weights, embeddings])
    assert np.isfinite(loss.numpy())
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_attention_pools_normalised_targets():
    layer = delf_layers.Attention()
    features = tf.random.stateless_normal([2, 3, 4, 8], seed=[1, 1])
    targets = tf.random.stateless_normal([2, 3, 4, 5], seed=[2, 2])
    pooled, prob, score = layer(features, targets=targets)
    assert pooled.shape == (2, 5) and prob.shape == (2, 3, 4, 1) and score.shape == prob.shape
    np.testing.assert_allclose(prob.numpy(), np.log1p(np.exp(score.numpy())), rtol=1e-5)
    t = targets.numpy()
    t = t / np.linalg.norm(t, axis=-1, keepdims=True)
    np.testing.assert_allclose(pooled.numpy(), (t * prob.numpy()).mean(axis=(1, 2)),
                               rtol=1e-4, atol=1e-6)
    pooled_self, _, _ = layer(features)
    assert pooled_self.shape == (2, 8)


def test_autoencoder_shapes_and_relu():
    layer = delf_layers.Autoencoder(reduced_dimension=16, expand_channels=32)
    reduced, expanded = layer(tf.random.stateless_normal([2, 3, 3, 64], seed=[3, 3]))
    assert reduced.shape == (2, 3, 3, 16) and expanded.shape == (2, 3, 3, 32)
    assert np.min(expanded.numpy()) >= 0.0
    assert np.min(reduced.numpy()) < 0.0  # linear

"""Contrastive and triplet losses on hand-computed tuples."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import ranking_losses

# One tuple: q = (1, 0); p at distance 0.6; negatives at distance 0.5 and sqrt(2).
QUERIES = tf.constant([[1.0, 0.0]])
POSITIVES = tf.constant([[0.4, 0.0]])
NEGATIVES = tf.constant([[[1.0, 0.5], [0.0, 1.0]]])


def test_contrastive_hand_values():
    # ½·0.6² + ½·max(0, 0.7 − 0.5)² + ½·max(0, 0.7 − √2)² = 0.18 + 0.02 + 0
    loss = ranking_losses.contrastive_loss(QUERIES, POSITIVES, NEGATIVES, margin=0.7, eps=0.0)
    assert loss.numpy() == pytest.approx(0.20, abs=1e-6)
    # The default eps shifts the distances by at most ~1e-6.
    assert ranking_losses.ContrastiveLoss()(QUERIES, POSITIVES, NEGATIVES).numpy() == \
        pytest.approx(0.20, abs=1e-5)


def test_contrastive_sums_over_the_batch():
    queries = tf.concat([QUERIES, QUERIES], 0)
    positives = tf.concat([POSITIVES, QUERIES], 0)        # second tuple: positive = query
    negatives = tf.concat([NEGATIVES, NEGATIVES * 0.0 + 5.0], 0)  # far negatives
    loss = ranking_losses.contrastive_loss(queries, positives, negatives, eps=0.0)
    assert loss.numpy() == pytest.approx(0.20, abs=1e-6)


def test_triplet_hand_values():
    # ‖q−p‖² = 0.36; ‖q−n‖² = 0.25 and 2: max(0, 0.36−0.25+0.1) + max(0, 0.36−2+0.1) = 0.21
    loss = ranking_losses.triplet_loss(QUERIES, POSITIVES, NEGATIVES, margin=0.1)
    assert loss.numpy() == pytest.approx(0.21, abs=1e-6)
    assert ranking_losses.TripletLoss(margin=0.1)(QUERIES, POSITIVES, NEGATIVES).numpy() == \
        pytest.approx(0.21, abs=1e-6)


def test_contrastive_gradient_is_finite_when_query_equals_positive():
    q = tf.Variable([[1.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = ranking_losses.contrastive_loss(q, tf.constant([[1.0, 0.0]]), NEGATIVES)
    assert np.all(np.isfinite(tape.gradient(loss, q).numpy()))


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="contrastive"):
        ranking_losses.ranking_loss("arcface", QUERIES, POSITIVES, NEGATIVES, 0.7)

"""compute_losses on hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import losses


def _outputs(with_autoencoder=True):
    outputs = {
            "desc_logits": tf.constant([[0.0, 0.0], [math.log(3.0), 0.0]]),
            "attn_logits": tf.constant([[math.log(4.0), 0.0], [0.0, 0.0]]),
    }
    if with_autoencoder:
        block3 = np.zeros([2, 1, 2, 1], np.float32)
        expanded = np.zeros([2, 1, 2, 1], np.float32)
        expanded[0, 0, 0, 0] = 2.0  # example 0: MSE 2; example 1: MSE 0
        outputs["block3"] = tf.constant(block3)
        outputs["expanded"] = tf.constant(expanded)
    return outputs


def test_losses_hand_computed():
    labels = tf.constant([0, 0])
    result = losses.compute_losses(_outputs(), labels, global_batch_size=2)
    desc = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    attn = (math.log(5.0 / 4.0) + math.log(2.0)) / 2
    recon = (2.0 + 0.0) / 2
    assert result["desc"].numpy() == pytest.approx(desc, rel=1e-5)
    assert result["attn"].numpy() == pytest.approx(attn, rel=1e-5)
    assert result["recon"].numpy() == pytest.approx(recon, rel=1e-5)
    assert result["total"].numpy() == pytest.approx(desc + attn + 10.0 * recon, rel=1e-5)
    weighted = losses.compute_losses(_outputs(), labels, global_batch_size=2,
                                     attention_loss_weight=0.5, reconstruction_loss_weight=2.0)
    assert weighted["total"].numpy() == pytest.approx(desc + 0.5 * attn + 2.0 * recon, rel=1e-5)


def test_losses_divide_by_global_batch_size():
    # One replica's share of a global batch of 8: per-example sum / 8.
    labels = tf.constant([0, 0])
    local = losses.compute_losses(_outputs(), labels, global_batch_size=8)
    full = losses.compute_losses(_outputs(), labels, global_batch_size=2)
    for key in ("desc", "attn", "recon", "total"):
        assert local[key].numpy() == pytest.approx(full[key].numpy() / 4, rel=1e-5)


def test_no_autoencoder_means_zero_reconstruction():
    result = losses.compute_losses(_outputs(False), tf.constant([1, 1]), global_batch_size=2)
    assert result["recon"].numpy() == 0.0
    assert result["total"].numpy() == pytest.approx(
            result["desc"].numpy() + result["attn"].numpy(), rel=1e-6)

"""DELF/DELG training losses and their weights, in one place.

L = L_desc + attention_loss_weight * L_attn + reconstruction_loss_weight * L_recon
(beta = 1, lambda = 10 as in the DELG paper). Every term is a sum of per-example losses divided
by the global batch size, so summing over replicas under tf.distribute gives the batch mean.
"""

import tensorflow as tf

__all__ = ["compute_losses"]


def _average(per_example, global_batch_size: int):
    return tf.reduce_sum(per_example) / tf.cast(global_batch_size, per_example.dtype)


def compute_losses(outputs: dict, labels, *, global_batch_size: int,
                   attention_loss_weight: float = 1.0,
                   reconstruction_loss_weight: float = 10.0) -> dict[str, tf.Tensor]:
    """outputs: a `forward(..., labels, training=True)` dict; labels: int [B] in [0, C).

    Returns float32 scalars "total", "desc" (global cross-entropy), "attn" (attention
    cross-entropy) and "recon" (per-example MSE between block3 and the autoencoder's
    expansion; 0 without the autoencoder).
    """
    if "desc_logits" not in outputs:
        raise ValueError("outputs have no logits: call init_classifiers(num_classes) on the "
                         "model before training")
    labels = tf.cast(labels, tf.int32)
    desc = _average(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=tf.cast(outputs["desc_logits"], tf.float32)), global_batch_size)
    attn = _average(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=tf.cast(outputs["attn_logits"], tf.float32)), global_batch_size)
    if "expanded" in outputs:
        # block3 is already stop-gradient'ed by the model; repeat it so this loss can never
        # reach the backbone whatever dict it is given.
        target = tf.stop_gradient(tf.cast(outputs["block3"], tf.float32))
        squared = tf.math.squared_difference(target, tf.cast(outputs["expanded"], tf.float32))
        recon = _average(tf.reduce_mean(squared, axis=[1, 2, 3]), global_batch_size)
    else:
        recon = tf.constant(0.0, tf.float32)
    total = desc + attention_loss_weight * attn + reconstruction_loss_weight * recon
    return {"total": total, "desc": desc, "attn": attn, "recon": recon}

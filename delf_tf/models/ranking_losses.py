"""Ranking losses over tuples (query, positive, negatives): contrastive and triplet.

Inputs are descriptors: queries [B,D], positives [B,D], negatives [B,N,D] (any float dtype;
the loss is computed in float32). Both losses are sums over the batch and the negatives, as
the original's (so the loss of a batch of tuples grows with the batch size).
"""

import keras
import tensorflow as tf

__all__ = [
    "DISTANCE_EPSILON", "contrastive_loss", "triplet_loss", "ContrastiveLoss", "TripletLoss",
    "RANKING_LOSSES", "ranking_loss",
]

# Added to each difference before the norm, as torch's pairwise_distance (the original port
# keeps it): the gradient of ||x|| is undefined at x = 0 (a query equal to its positive).
DISTANCE_EPSILON = 1e-6


def _as_float32(queries, positives, negatives):
    return (tf.cast(queries, tf.float32), tf.cast(positives, tf.float32),
            tf.cast(negatives, tf.float32))


def contrastive_loss(queries, positives, negatives, margin: float = 0.7,
                     eps: float = DISTANCE_EPSILON):
    """sum_b [ ½‖q−p‖² + sum_n ½·max(0, margin − ‖q−n‖)² ] -> float32 scalar.

    Distances are ‖q − x + eps‖ (eps = 0 gives the plain Euclidean distance).
    """
    queries, positives, negatives = _as_float32(queries, positives, negatives)
    positive_distance = tf.norm(queries - positives + eps, axis=-1)
    negative_distance = tf.norm(queries[:, None, :] - negatives + eps, axis=-1)
    positive_part = 0.5 * tf.square(positive_distance)
    negative_part = 0.5 * tf.square(tf.maximum(margin - negative_distance, 0.0))
    return tf.reduce_sum(positive_part) + tf.reduce_sum(negative_part)


def triplet_loss(queries, positives, negatives, margin: float = 0.1):
    """sum_b sum_n max(0, ‖q−p‖² − ‖q−n‖² + margin) -> float32 scalar."""
    queries, positives, negatives = _as_float32(queries, positives, negatives)
    positive_distance = tf.reduce_sum(tf.square(queries - positives), axis=-1)
    negative_distance = tf.reduce_sum(tf.square(queries[:, None, :] - negatives), axis=-1)
    return tf.reduce_sum(tf.maximum(positive_distance[:, None] - negative_distance + margin,
                                    0.0))


class ContrastiveLoss(keras.losses.Loss):
    """Callable wrapper: loss(queries, positives, negatives) -> `contrastive_loss`."""

    def __init__(self, margin: float = 0.7, eps: float = DISTANCE_EPSILON, **kwargs):
        super().__init__(reduction=None, **kwargs)
        self.margin = margin
        self.eps = eps

    def __call__(self, queries, positives, negatives):
        return contrastive_loss(queries, positives, negatives, margin=self.margin, eps=self.eps)


class TripletLoss(keras.losses.Loss):
    """Callable wrapper: loss(queries, positives, negatives) -> `triplet_loss`."""

    def __init__(self, margin: float = 0.1, **kwargs):
        super().__init__(reduction=None, **kwargs)
        self.margin = margin

    def __call__(self, queries, positives, negatives):
        return triplet_loss(queries, positives, negatives, margin=self.margin)


RANKING_LOSSES = {"contrastive": contrastive_loss, "triplet": triplet_loss}


def ranking_loss(name: str, queries, positives, negatives, margin: float):
    """The loss `name` ("contrastive" or "triplet") with the given margin -> float32 scalar."""
    if name not in RANKING_LOSSES:
        raise ValueError(f"Unknown loss {name!r}; expected one of {sorted(RANKING_LOSSES)}")
    return RANKING_LOSSES[name](queries, positives, negatives, margin=margin)

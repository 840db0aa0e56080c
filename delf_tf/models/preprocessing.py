"""The one pixel normalisation used by training, export and extraction."""

import tensorflow as tf

__all__ = ["normalize_images"]


def normalize_images(images) -> tf.Tensor:
    """uint8 (or float in [0, 255]) [..., 3] -> float32 (x - 128) / 128, in [-1, 1)."""
    images = tf.cast(images, tf.float32)
    return (images - 128.0) / 128.0

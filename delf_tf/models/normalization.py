"""L2 normalisation of descriptors in the graph (the original's `L2Normalization` layer)."""

import keras
import tensorflow as tf

__all__ = ["L2_EPSILON", "l2_normalize", "L2Normalization"]

# tf.math.l2_normalize divides by sqrt(max(sum x^2, epsilon)); 1e-12 keeps an all-zero row 0.
L2_EPSILON = 1e-12


def l2_normalize(x, axis: int = -1):
    """x / max(||x||, 1e-6) along `axis`, float32 for float16 inputs (same shape, float32)."""
    if x.dtype in (tf.float16, tf.bfloat16):
        x = tf.cast(x, tf.float32)
    return tf.math.l2_normalize(x, axis=axis, epsilon=L2_EPSILON)


class L2Normalization(keras.layers.Layer):
    """Thin layer over `l2_normalize` along `axis` (default 1: rows of a [B,D] batch)."""

    def __init__(self, axis: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return l2_normalize(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}

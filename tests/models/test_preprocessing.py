"""normalize_images: (x - 128) / 128 as float32."""

import numpy as np
import tensorflow as tf

from delf_tf.models import preprocessing


def test_normalize_images_uint8_and_float():
    pixels = np.array([[[0, 128, 255]]], np.uint8)
    out = preprocessing.normalize_images(pixels)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), [[[-1.0, 0.0, 127.0 / 128.0]]])
    np.testing.assert_allclose(
            preprocessing.normalize_images(tf.constant(pixels, tf.float32)).numpy(), out.numpy())

"""MAC / SPoC / GeM pooling and L2Normalization on hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import layers as delf_layers
from delf_tf.models import normalization, pooling


def _map():
    x = np.zeros([1, 2, 2, 2], np.float32)
    x[0, :, :, 0] = [[1.0, 2.0], [3.0, 4.0]]
    x[0, :, :, 1] = [[-5.0, 0.0], [0.0, 2.0]]
    return tf.constant(x)


def test_mac_and_spoc_hand_values():
    np.testing.assert_allclose(pooling.mac(_map()).numpy(), [[4.0, 2.0]])
    np.testing.assert_allclose(pooling.spoc(_map()).numpy(), [[2.5, -0.75]])
    np.testing.assert_allclose(pooling.MAC()(_map()).numpy(), [[4.0, 2.0]])
    np.testing.assert_allclose(pooling.SPoC()(_map()).numpy(), [[2.5, -0.75]])


def test_gem_is_one_formula_shared_with_delg_layers():
    assert delf_layers.gem is pooling.gem and delf_layers.GeM is pooling.GeM
    expected = [[((1 + 8 + 27 + 64) / 4) ** (1 / 3), ((3 * 1e-18 + 8) / 4) ** (1 / 3)]]
    np.testing.assert_allclose(pooling.gem(_map(), power=3.0).numpy(), expected, rtol=1e-5)


def test_learnable_gem_power_gets_a_gradient():
    layer = pooling.GeM(power=3.0, trainable_power=True)
    assert [w.name for w in layer.trainable_weights] == ["p"]
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(_map()))
    grad = tape.gradient(out, layer.p)
    # d/dp of the generalized mean of [1,2,3,4] is positive (the mean grows with p).
    assert grad.numpy()[0] > 0
    layer.p.assign([1.0])
    np.testing.assert_allclose(layer(_map()).numpy()[0, 0], 2.5, rtol=1e-6)
    assert layer.current_power() == 1.0


def test_make_pooling_rejects_unknown_names():
    assert isinstance(pooling.make_pooling("spoc"), pooling.SPoC)
    with pytest.raises(ValueError, match="rmac"):
        pooling.make_pooling("rmac")


def test_l2_normalization_rows():
    x = tf.constant([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(normalization.L2Normalization()(x).numpy(),
                               [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_gem_takes_the_original_positional_order():
    x = np.abs(np.random.default_rng(0).normal(size=[2, 3, 4, 5])).astype(np.float32) + 0.1
    positional = pooling.gem(tf.constant(x), [1, 2], 2.0).numpy()
    np.testing.assert_allclose(positional, np.sqrt((x**2).mean(axis=(1, 2))), rtol=1e-5)
    np.testing.assert_allclose(pooling.mac(tf.constant(x), [1]).numpy(), x.max(axis=1))


def test_gem_pooling_2d_is_windowed_gem():
    x = np.arange(1, 1 + 4 * 4, dtype=np.float32).reshape(1, 4, 4, 1)
    out = pooling.GeMPooling2D(power=3.0, pool_size=(2, 2))(tf.constant(x)).numpy()
    window = x[0, :2, :2, 0]
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(out[0, 0, 0, 0], np.cbrt((window**3).mean()), rtol=1e-5)

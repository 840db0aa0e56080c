"""HOW network parts on hand inputs: smoothing, attention, whitening, pooling."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.extraction import feature_extractor
from delf_tf.how import model as how_model
from delf_tf.models import resnet


def test_smoothing_averages_the_cells_inside_the_map():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    out = how_model.smooth(tf.constant(x), 3).numpy()[0, :, :, 0]
    assert out.shape == (3, 4)
    # Interior cell (1, 1): mean of rows 0-2, cols 0-2.
    assert out[1, 1] == pytest.approx(x[0, 0:3, 0:3, 0].mean())
    # Corner (0, 0): only the 4 cells inside the map count (no zero padding).
    assert out[0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    assert out[2, 3] == pytest.approx(np.mean([6, 7, 10, 11]))
    np.testing.assert_array_equal(how_model.smooth(tf.constant(x), 1).numpy(), x)


def test_strength_and_pooling_on_hand_values():
    u = np.zeros([1, 1, 2, 3], np.float32)
    u[0, 0, 0] = [3, 4, 0]
    u[0, 0, 1] = [0, 0, 2]
    np.testing.assert_allclose(how_model.strength(tf.constant(u)).numpy(), [[[5.0, 2.0]]])
    descriptors = np.array([[[[1, 0], [0, 1]]]], np.float32)
    z = how_model.how_pool(tf.constant([[[5.0, 2.0]]]), tf.constant(descriptors)).numpy()
    np.testing.assert_allclose(z, [[5, 2] / np.sqrt(29)], rtol=1e-6)


def test_pca_whitening_reproduces_a_known_whitening():
    rng = np.random.default_rng(0)
    # Data with a known covariance C = A diag(s^2) A^T (A orthonormal) and mean mu.
    a, _ = np.linalg.qr(rng.normal(size=[4, 4]))
    s = np.array([4.0, 2.0, 1.0, 0.5])
    mu = np.array([1.0, -2.0, 3.0, 0.5])
    z = rng.normal(size=[200000, 4])
    z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z.T, bias=True))).T
    x = z * s @ a.T + mu
    projection, mean = how_model.LearnPcaWhitening(x, 2)
    np.testing.assert_allclose(mean, mu, atol=1e-5)
    # Rows: the two leading axes of A scaled by 1/s, up to sign.
    expected = (a[:, :2] / s[:2]).T
    signs = np.sign(np.sum(projection * expected, axis=1))
    np.testing.assert_allclose(projection, expected * signs[:, None], atol=1e-4)
    whitened = (x - mean) @ projection.T
    np.testing.assert_allclose(np.cov(whitened.T, bias=True), np.eye(2), atol=1e-4)
    with pytest.raises(ValueError, match="dimension"):
        how_model.LearnPcaWhitening(x, 5)


def test_whitening_is_a_frozen_1x1_conv_with_bias():
    net = how_model.HowNet("resnet_tiny", output_dim=4)
    net.build_for_input()
    d_in = net.input_dim
    rng = np.random.default_rng(1)
    projection = rng.normal(size=[4, d_in]).astype(np.float32)
    mean = rng.normal(size=[d_in]).astype(np.float32)
    net.set_whitening(projection, mean)
    ubar = rng.normal(size=[1, 2, 3, d_in]).astype(np.float32)
    out = net.whitening(tf.constant(ubar)).numpy()
    np.testing.assert_allclose(out, (ubar - mean) @ projection.T, rtol=1e-4, atol=1e-4)
    assert not net.whitening.trainable
    assert all("whitening" not in v.path for v in net.trainable_variables)
    with pytest.raises(ValueError, match="Whitening must be"):
        net.set_whitening(projection[:, 1:], mean)


def test_shapes_geometry_and_global_descriptor():
    net = how_model.HowNet("resnet_tiny", output_dim=16)
    images = tf.random.normal([2, 96, 128, 3], seed=0)
    strengths, descriptors = net.local_features(images)
    assert strengths.shape == (2, 3, 4) and descriptors.shape == (2, 3, 4, 16)
    np.testing.assert_allclose(np.linalg.norm(descriptors.numpy(), axis=-1), 1.0, rtol=1e-5)
    z = net(images)
    assert z.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(z.numpy(), axis=-1), 1.0, rtol=1e-5)
    # Z_how is the strength-weighted sum of o(ū), recomputed by hand.
    w, o = net.dense_outputs(images)
    manual = np.einsum("bhw,bhwd->bd", w.numpy(), o.numpy())
    np.testing.assert_allclose(z.numpy(), manual / np.linalg.norm(manual, axis=1,
                                                                  keepdims=True), atol=1e-5)
    # ResNet-18 conv5: 435 px receptive field, stride 32; + 3x3 smoothing.
    r18 = how_model.HowNet("resnet18", output_dim=16)
    assert (r18.receptive_field, r18.stride, r18.input_dim) == (435 + 64, 32, 512)
    r50 = resnet.BACKBONE_SPECS["resnet50"]
    # ResNet-50 block3 without smoothing: DELF's receptive field.
    assert how_model.receptive_field(r50, 3, 1) == (feature_extractor.RECEPTIVE_FIELD, 16)
    no_last = how_model.HowNet("resnet18", drop_last_stage=True, output_dim=16)
    assert no_last.input_dim == 256 and no_last.stride == 16


def test_whitening_initialised_from_training_images():
    from delf_tf.how import whitening

    net = how_model.HowNet("resnet18", output_dim=8)
    net.build_for_input()
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, size=[96, 128, 3], dtype=np.uint8) for _ in range(4)]
    whitening.InitializeWhitening(net, images, num_features=6)
    descriptors = np.concatenate([whitening.StrongestSmoothedDescriptors(net, im, 6)
                                  for im in images])
    assert descriptors.shape == (24, net.input_dim)
    # The model's o(ū) on those descriptors is white: zero mean, identity covariance.
    out = net.whitening(tf.constant(descriptors[None, None])).numpy()[0, 0]
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(out.T, bias=True), np.eye(8), atol=1e-2)
    # Only the strongest cells are used.
    strengths, smoothed = net.smoothed_features(
        tf.cast(images[0][None], tf.float32) / 128.0 - 1.0)
    top = np.argsort(-strengths.numpy().reshape(-1))[:6]
    np.testing.assert_allclose(whitening.StrongestSmoothedDescriptors(net, images[0], 6),
                               smoothed.numpy().reshape(-1, net.input_dim)[top], rtol=1e-5)

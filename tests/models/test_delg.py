"""DELG model: output shapes, ArcFace in the forward pass, scale factor, mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import delg
from delf_tf.models import layers as delf_layers

NUM_CLASSES = 7


@pytest.fixture(scope="module")
def r50_delg_outputs():
    """DELG on ResNet-50 without block3_strides, 321x321 batch of 2, training forward."""
    model = delg.Delg(backbone="resnet50", block3_strides=False)
    model.init_classifiers(NUM_CLASSES)
    images = tf.random.stateless_uniform([2, 321, 321, 3], seed=[1, 2], minval=-1, maxval=1)
    return model, model.forward(images, labels=tf.constant([1, 3]), training=True)


def test_r50_delg_shapes(r50_delg_outputs):
    _, outputs = r50_delg_outputs
    assert outputs["global_descriptor"].shape == (2, 2048)
    assert outputs["block3"].shape == (2, 20, 20, 1024)
    assert outputs["local_features"].shape == (2, 20, 20, 128)
    assert outputs["expanded"].shape == (2, 20, 20, 1024)
    assert outputs["attention_prob"].shape == (2, 20, 20, 1)
    assert outputs["attention_score"].shape == (2, 20, 20, 1)
    assert outputs["desc_logits"].shape == (2, NUM_CLASSES)
    assert outputs["attn_logits"].shape == (2, NUM_CLASSES)
    assert all(v.dtype == tf.float32 for v in outputs.values())


def test_r50_delg_variables(r50_delg_outputs):
    model, _ = r50_delg_outputs
    assert model.cosine_weights.shape == (2048, NUM_CLASSES)
    assert model.scale_factor.numpy() == pytest.approx(45.25)
    assert not model.scale_factor.trainable
    assert any(v is model.scale_factor for v in model.weights)
    assert not any(v is model.scale_factor for v in model.trainable_variables)


def test_delg_logits_are_scaled_cosines_with_margin_on_true_class():
    model = delg.Delg(backbone="resnet_tiny", arcface_margin=0.2, scale_factor_init=10.0)
    model.init_classifiers(4)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[3, 4], minval=-1, maxval=1)
    labels = tf.constant([2, 0])
    true_class = np.zeros([2, 4], bool)
    true_class[[0, 1], [2, 0]] = True
    for training in (False, True):
        outputs = model.forward(images, labels=labels, training=training)
        cosine = delf_layers.cosine_logits(outputs["global_descriptor"],
                                           model.cosine_weights).numpy()
        logits = outputs["desc_logits"].numpy()
        np.testing.assert_allclose(logits[~true_class], 10.0 * cosine[~true_class],
                                   rtol=1e-4, atol=1e-5)
        if training:
            theta = np.arccos(cosine[true_class])
            np.testing.assert_allclose(logits[true_class], 10.0 * np.cos(theta + 0.2),
                                       rtol=1e-4, atol=1e-5)
        else:  # evaluation: no margin even with labels
            np.testing.assert_allclose(logits[true_class], 10.0 * cosine[true_class],
                                       rtol=1e-4, atol=1e-5)


def test_other_reduced_dimension_and_build_call():
    model = delg.Delg(backbone="resnet_tiny", reduced_dimension=32, dim_expand_channels=1024,
                      embedding_layer_dim=64)
    images = tf.random.stateless_uniform([2, 96, 96, 3], seed=[5, 6], minval=-1, maxval=1)
    global_descriptor, prob, local = model.build_call(images)
    assert global_descriptor.shape == (2, 64)
    assert prob.shape == (2, 3, 3, 1)
    assert local.shape == (2, 3, 3, 32)
    assert np.all(prob.numpy() > 0)


def test_learnable_scale_is_trainable():
    model = delg.Delg(backbone="resnet_tiny", learnable_scale=True, scale_factor_init=3.0)
    model.init_classifiers(2)
    model.build_for_input(32)
    assert any(v is model.scale_factor for v in model.trainable_variables)
    assert any(v is model.scale_factor for v in model.variable_groups()["desc_fc"])


def test_init_classifiers_after_build():
    model = delg.Delg(backbone="resnet_tiny")
    model.build_for_input(32)
    assert model.cosine_weights is None
    model.init_classifiers(3)
    model.build_for_input(32)
    assert model.cosine_weights.shape == (2048, 3)
    assert model.att_fc.kernel.shape == (1024, 3)


def test_mixed_precision_outputs_are_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = delg.Delg(backbone="resnet_tiny", reduced_dimension=16)
        model.init_classifiers(3)
        images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[7, 8], minval=-1, maxval=1)
        outputs = model.forward(images, labels=tf.constant([0, 2]), training=True)
        inference = model.build_call(images)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.backbone.conv1.compute_dtype == "float16"
    assert all(v.dtype == tf.float32 for v in outputs.values())
    assert all(t.dtype == tf.float32 for t in inference)
    assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values())

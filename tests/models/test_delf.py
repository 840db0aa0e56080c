"""DELF model outputs and gradient isolation between the backbone and the local heads."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import delf, delg, losses

NUM_CLASSES = 5


def _images(size=64, seed=0):
    return tf.random.stateless_uniform([2, size, size, 3], seed=[seed, 1], minval=-1, maxval=1)


def test_delf_outputs_without_autoencoder():
    model = delf.Delf(backbone="resnet_tiny", use_dim_reduction=False)
    model.init_classifiers(NUM_CLASSES)
    outputs = model.forward(_images(96), training=False)
    assert model.autoencoder is None
    assert outputs["global_descriptor"].shape == (2, 2048)
    assert outputs["local_features"].shape == (2, 3, 3, 1024)
    assert "expanded" not in outputs
    assert outputs["desc_logits"].shape == (2, NUM_CLASSES)
    assert outputs["attn_logits"].shape == (2, NUM_CLASSES)
    global_descriptor, prob, local = model.build_call(_images(96))
    np.testing.assert_allclose(local.numpy(), outputs["local_features"].numpy(), rtol=1e-5)
    assert prob.shape == (2, 3, 3, 1) and global_descriptor.shape == (2, 2048)


def test_forward_without_classifiers_has_no_logits():
    model = delf.Delf(backbone="resnet_tiny")
    outputs = model.forward(_images(), training=False)
    assert "desc_logits" not in outputs and "attn_logits" not in outputs
    assert outputs["local_features"].shape == (2, 2, 2, 128)
    with pytest.raises(ValueError, match="init_classifiers"):
        losses.compute_losses(outputs, tf.constant([0, 1]), global_batch_size=2)
    with pytest.raises(ValueError, match="num_classes"):
        model.init_classifiers(0)
    model.init_classifiers(3)
    heads = model.att_fc
    model.init_classifiers(3)  # same number: no-op
    assert model.att_fc is heads
    with pytest.raises(ValueError, match="already has classifiers for 3"):
        model.init_classifiers(4)


def test_autoencoder_must_reconstruct_block3_channels():
    with pytest.raises(ValueError, match="dim_expand_channels=512"):
        delf.Delf(backbone="resnet_tiny", dim_expand_channels=512)


def _grads(model, loss_sets):
    """Gradients of each sum of loss terms in `loss_sets`, by variable group (one forward)."""
    labels = tf.constant([1, 4])
    with tf.GradientTape(persistent=True) as tape:
        outputs = model.forward(_images(64, seed=3), labels=labels, training=True)
        terms = losses.compute_losses(outputs, labels, global_batch_size=2)
        totals = [tf.add_n([terms[k] for k in keys]) for keys in loss_sets]
    groups = model.variable_groups()
    result = [{name: tape.gradient(total, variables) for name, variables in groups.items()}
              for total in totals]
    del tape
    return groups, result


def _all_zero_or_none(grads):
    return all(g is None or not np.any(g.numpy()) for g in grads)


def _some_nonzero(grads):
    return any(g is not None and np.any(g.numpy()) for g in grads)


@pytest.mark.parametrize("model_class", [delf.Delf, delg.Delg])
def test_gradient_isolation(model_class):
    model = model_class(backbone="resnet_tiny", reduced_dimension=16)
    model.init_classifiers(NUM_CLASSES)

    groups, (local, global_only) = _grads(model, [["attn", "recon"], ["desc"]])
    assert len(groups["backbone"]) > 0
    assert _all_zero_or_none(local["backbone"])
    assert _all_zero_or_none(local["desc_fc"])
    assert _some_nonzero(local["attention"])
    assert _some_nonzero(local["autoencoder"])
    assert _some_nonzero(local["att_fc"])

    assert _some_nonzero(global_only["backbone"])
    assert _some_nonzero(global_only["desc_fc"])
    assert _all_zero_or_none(global_only["attention"])
    assert _all_zero_or_none(global_only["autoencoder"])
    assert _all_zero_or_none(global_only["att_fc"])


def test_feature_geometry_is_the_models():
    from delf_tf.extraction import feature_extractor

    for block3_strides, stride in ((False, 16), (True, 32)):
        # ResNet-50 (not built: the geometry is the spec's): the original's constants.
        r50 = delf.Delf(backbone="resnet50", block3_strides=block3_strides).feature_geometry
        assert (r50.stride, r50.receptive_field, r50.padding) == (
            stride, feature_extractor.RECEPTIVE_FIELD, feature_extractor.RECEPTIVE_PADDING)
        # Any other backbone: its own block3 geometry, not ResNet-50's.
        model = delf.Delf(backbone="resnet_tiny", block3_strides=block3_strides)
        geometry = model.feature_geometry
        assert geometry.stride == stride == feature_extractor.feature_stride(block3_strides)
        assert geometry == model.backbone.feature_geometry("block3")
        assert (geometry.receptive_field, geometry.padding) == (67, 33)
    # The backbone's own block3 field: one bottleneck per stage.
    assert model.backbone.feature_geometry().receptive_field == 67

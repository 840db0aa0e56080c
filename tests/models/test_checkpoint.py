"""save_weights / load_model / restore_weights round trips through the JSON sidecar."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import checkpoint, delf, delg


def _perturb(model):
    for i, variable in enumerate(model.weights):
        variable.assign(variable + tf.random.stateless_uniform(variable.shape, seed=[i, 9]))


def _assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for va, vb in zip(a.weights, b.weights):
        assert va.path == vb.path
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_delg_round_trip_with_heads(tmp_path):
    model = delg.Delg(backbone="resnet_tiny", reduced_dimension=16, arcface_margin=0.3,
                      learnable_scale=True)
    model.init_classifiers(3)
    model.build_for_input(32)
    _perturb(model)
    prefix = str(tmp_path / "logdir" / "delf_weights")
    checkpoint.save_weights(model, prefix)
    with open(prefix + ".json") as f:
        sidecar = json.load(f)
    assert sidecar["class"] == "Delg" and sidecar["num_classes"] == 3
    assert sidecar["config"]["reduced_dimension"] == 16
    assert sidecar["config"]["arcface_margin"] == 0.3

    loaded = checkpoint.load_model(prefix)
    assert isinstance(loaded, delg.Delg)
    assert loaded.arcface_margin == 0.3
    _assert_same_weights(model, loaded)
    images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[1, 1], minval=-1, maxval=1)
    for a, b in zip(model.build_call(images), loaded.build_call(images)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_load_without_heads_for_export(tmp_path):
    model = delf.Delf(backbone="resnet_tiny", use_dim_reduction=False)
    model.init_classifiers(4)
    model.build_for_input(32)
    _perturb(model)
    prefix = str(tmp_path / "delf_weights")
    checkpoint.save_weights(model, prefix)
    loaded = checkpoint.load_model(prefix, num_classes=None)
    assert isinstance(loaded, delf.Delf) and loaded.desc_fc is None
    assert loaded.autoencoder is None
    np.testing.assert_array_equal(loaded.backbone.conv1.kernel.numpy(),
                                  model.backbone.conv1.kernel.numpy())
    np.testing.assert_array_equal(loaded.attention.conv2.kernel.numpy(),
                                  model.attention.conv2.kernel.numpy())


def test_checkpoint_names_follow_the_original_attributes(tmp_path):
    model = delg.Delg(backbone="resnet_tiny")
    model.init_classifiers(2)
    model.build_for_input(32)
    prefix = str(tmp_path / "delf_weights")
    checkpoint.save_weights(model, prefix)
    names = {name.split("/.ATTRIBUTES")[0] for name, _ in tf.train.list_variables(prefix)}
    for expected in ("model/cosine_weights", "model/scale_factor",
                     "model/backbone/conv1/bias", "model/backbone/bn_conv1/moving_mean",
                     "model/backbone/l5a/conv_shortcut/bias", "model/attention/conv1/bias",
                     "model/autoencoder/conv2/bias", "model/att_fc/bias"):
        assert expected in names


def test_errors_name_the_path(tmp_path):
    prefix = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        checkpoint.load_model(prefix)
    with pytest.raises(FileNotFoundError, match="nothing"):
        checkpoint.restore_weights(delf.Delf(backbone="resnet_tiny"), prefix)
    (tmp_path / "bad.json").write_text(json.dumps({"class": "Nope", "config": {}}))
    with pytest.raises(ValueError, match="Nope"):
        checkpoint.load_model(str(tmp_path / "bad"))


def test_restore_into_a_different_model_is_an_error(tmp_path):
    saved = delf.Delf(backbone="resnet_tiny", use_dim_reduction=False)
    saved.build_for_input(32)
    prefix = str(tmp_path / "delf_weights")
    checkpoint.save_weights(saved, prefix)
    with pytest.raises(ValueError, match="does not match the model"):
        checkpoint.load_model(prefix, use_dim_reduction=True)


def test_truncated_checkpoint_data_names_the_checkpoint(tmp_path):
    import glob

    saved = delf.Delf(backbone="resnet_tiny")
    saved.build_for_input(32)
    prefix = str(tmp_path / "delf_weights")
    checkpoint.save_weights(saved, prefix)
    (data,) = glob.glob(prefix + ".data-*")
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    with pytest.raises(ValueError, match=f"Checkpoint {prefix} is unreadable"):
        checkpoint.load_model(prefix)


def test_registry_builds_every_class_by_name():
    from delf_tf.models import registry

    assert {"Delf": delf.Delf, "Delg": delg.Delg} == registry.MODEL_CLASSES
    model = registry.create_model("Delf", 5, name="named")
    assert isinstance(model, delf.Delf) and model.name == "named"
    with pytest.raises(ValueError, match="unknown model class 'Resnet'"):
        registry.model_class("Resnet")

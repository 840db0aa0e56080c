"""ImageNet HDF5 import: classic Keras layout, both layer namings, clear errors."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import resnet, weights


@pytest.fixture(scope="module")
def backbones() -> tuple[resnet.ResNet, resnet.ResNet]:
    """Two built tiny backbones (building is the slow part; values are re-drawn per test)."""
    models = tuple(resnet.ResNet("resnet_tiny", pooling=None) for _ in range(2))
    for model in models:
        model(tf.zeros([1, 32, 32, 3]))
    return models


def _scrambled(model: resnet.ResNet, seed: int) -> resnet.ResNet:
    """Gives every variable, BN moving statistics included, fresh distinct values."""
    for i, variable in enumerate(model.weights):
        variable.assign(tf.random.stateless_uniform(variable.shape, seed=[seed, i]) + 0.5)
    return model


def _assert_backbones_equal(a: resnet.ResNet, b: resnet.ResNet):
    assert len(a.weights) == len(b.weights) > 0
    for va, vb in zip(a.weights, b.weights):
        assert va.path == vb.path
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


@pytest.mark.parametrize("naming", ["original", "applications"])
def test_round_trip_every_variable_including_stem(tmp_path, naming, backbones):
    source, target = _scrambled(backbones[0], 1), _scrambled(backbones[1], 2)
    assert not np.array_equal(source.conv1.kernel.numpy(), target.conv1.kernel.numpy())
    path = str(tmp_path / "weights.h5")
    weights.save_classic_h5(source, path, naming=naming)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        stem = "conv1" if naming == "original" else "conv1_conv"
        assert names[0] == stem
        assert f[stem].attrs["weight_names"][0].decode() == f"{stem}/kernel:0"
    weights.load_imagenet_weights(target, path)
    _assert_backbones_equal(source, target)


def test_builds_an_unbuilt_backbone(tmp_path, backbones):
    source = _scrambled(backbones[0], 3)
    path = str(tmp_path / "weights.h5")
    weights.save_classic_h5(source, path)
    target = resnet.ResNet("resnet_tiny", pooling=None)
    weights.load_imagenet_weights(target, path)
    _assert_backbones_equal(source, target)


def test_extra_weightless_and_top_layers_are_ignored(tmp_path, backbones):
    source, target = _scrambled(backbones[0], 4), _scrambled(backbones[1], 5)
    path = str(tmp_path / "weights.h5")
    weights.save_classic_h5(source, path)
    with h5py.File(path, "a") as f:
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        fc = f.create_group("fc1000")
        fc.create_dataset("fc1000/kernel:0", data=np.zeros([2048, 1000], np.float32))
        fc.attrs["weight_names"] = np.array([b"fc1000/kernel:0"])
        f.attrs["layer_names"] = np.array(
                [b"input_1"] + list(f.attrs["layer_names"]) + [b"fc1000"])
    weights.load_imagenet_weights(target, path)
    _assert_backbones_equal(source, target)


def test_missing_layers_are_listed(tmp_path, backbones):
    source, target = _scrambled(backbones[0], 6), _scrambled(backbones[1], 7)
    before = target.conv1.kernel.numpy().copy()
    path = str(tmp_path / "weights.h5")
    weights.save_classic_h5(source, path)
    with h5py.File(path, "a") as f:
        kept = [n for n in f.attrs["layer_names"] if n not in (b"bn_conv1", b"res5a_branch2b")]
        f.attrs["layer_names"] = np.array(kept)
    with pytest.raises(ValueError, match="2 backbone layers") as info:
        weights.load_imagenet_weights(target, path)
    assert "bn_conv1" in str(info.value) and "res5a_branch2b" in str(info.value)
    # Nothing assigned on failure.
    np.testing.assert_array_equal(target.conv1.kernel.numpy(), before)


def test_shape_mismatch_is_reported(tmp_path, backbones):
    source = _scrambled(backbones[0], 8)
    path = str(tmp_path / "weights.h5")
    weights.save_classic_h5(source, path)
    with h5py.File(path, "a") as f:
        del f["conv1"]["conv1"]["bias:0"]
        f["conv1"]["conv1"].create_dataset("bias:0", data=np.zeros([3], np.float32))
    with pytest.raises(ValueError, match=r"conv1/bias: file shape \(3,\)"):
        weights.load_imagenet_weights(backbones[1], path)


def test_not_a_keras_file(tmp_path, backbones):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        weights.load_imagenet_weights(backbones[1], str(tmp_path / "missing.h5"))
    path = str(tmp_path / "other.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="layer_names"):
        weights.load_imagenet_weights(backbones[1], path)
    (tmp_path / "text.h5").write_text("not an HDF5 file")
    with pytest.raises(ValueError, match="text.h5: not an HDF5 weights file"):
        weights.load_imagenet_weights(backbones[1], str(tmp_path / "text.h5"))


def test_name_mapping():
    assert weights.applications_name("conv1") == "conv1_conv"
    assert weights.applications_name("bn_conv1") == "conv1_bn"
    assert weights.applications_name("res3b_branch2c") == "conv3_block2_3_conv"
    assert weights.applications_name("bn4a_branch1") == "conv4_block1_0_bn"
    assert weights.original_name("conv5_block3_2_bn") == "bn5c_branch2b"
    assert weights.original_name("conv2_block1_0_conv") == "res2a_branch1"
    assert weights.original_name("res2a_branch2a") == "res2a_branch2a"
    for name in resnet.ResNet("resnet101").named_layers():
        assert weights.original_name(weights.applications_name(name)) == name


def test_imports_a_keras_applications_resnet50_layout(tmp_path):
    """Layer names and shapes of keras.applications' ResNet50 map onto ours one-to-one."""
    import keras

    reference = keras.applications.ResNet50(weights=None, include_top=False,
                                            input_shape=(32, 32, 3))
    path = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in reference.layers])
        for layer in reference.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{v.name}:0" for v in layer.weights]
            for name, variable in zip(names, layer.weights):
                group.create_dataset(name, data=variable.numpy())
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
    ours = resnet.ResNet("resnet50", pooling=None)
    weights.load_imagenet_weights(ours, path, image_size=32)
    named = ours.named_layers()
    pairs = [("conv1", "conv1_conv"), ("bn_conv1", "conv1_bn"),
             ("res2a_branch1", "conv2_block1_0_conv"), ("bn4f_branch2b", "conv4_block6_2_bn"),
             ("res5c_branch2c", "conv5_block3_3_conv")]
    for ours_name, reference_name in pairs:
        for a, b in zip(named[ours_name].weights, reference.get_layer(reference_name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

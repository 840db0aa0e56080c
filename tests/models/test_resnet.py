"""ResNet backbone: shapes, names, strides, BN settings and pooling options."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.models import layers as delf_layers
from delf_tf.models import resnet


@pytest.fixture(scope="module")
def r50_outputs():
    """ResNet-50 (block3_strides) endpoints for a 321x321 batch of 2.

    The 20x20 block3 of ResNet-50 without block3_strides is checked through DELG in
    test_delg.py, so the expensive R50 is built only once per file.
    """
    images = tf.random.stateless_uniform([2, 321, 321, 3], seed=[1, 2], minval=-1, maxval=1)
    model = resnet.ResNet("resnet50", block3_strides=True, pooling="avg")
    pooled, endpoints = model(images, training=False)
    return model, pooled, endpoints


def test_r50_endpoint_shapes_with_block3_strides(r50_outputs):
    _, pooled, endpoints = r50_outputs
    assert endpoints["block0"].shape == (2, 161, 161, 64)
    assert endpoints["block0mp"].shape == (2, 80, 80, 64)
    assert endpoints["block1"].shape == (2, 80, 80, 256)
    assert endpoints["block2"].shape == (2, 40, 40, 512)
    assert endpoints["block3"].shape == (2, 10, 10, 1024)
    assert endpoints["block4"].shape == (2, 10, 10, 2048)
    assert pooled.shape == (2, 2048)


def test_block3_strides_moves_the_stage5_stride(r50_outputs):
    with_strides = r50_outputs[0].named_layers()
    without = resnet.ResNet("resnet_tiny", block3_strides=False).named_layers()
    assert with_strides["res5a_branch2a"].strides == (1, 1)
    assert with_strides["res5a_branch1"].strides == (1, 1)
    assert without["res5a_branch2a"].strides == (2, 2)
    assert without["res4a_branch2a"].strides == (2, 2)
    assert with_strides["res2a_branch2a"].strides == (1, 1)


def test_r50_layer_names_and_settings(r50_outputs):
    named = r50_outputs[0].named_layers()
    # stem (2) + 16 blocks x 6 + 4 projection shortcuts x 2
    assert len(named) == 2 + 16 * 6 + 4 * 2
    for name in ("conv1", "bn_conv1", "res2a_branch1", "bn2a_branch1", "res2c_branch2c",
                 "res3d_branch2b", "res4f_branch2a", "bn5c_branch2c"):
        assert name in named
        assert named[name].name == name
    assert "res4g_branch2a" not in named
    assert named["conv1"].kernel.shape == (7, 7, 3, 64)
    for name, layer in named.items():
        if name.startswith("bn"):
            assert layer.epsilon == pytest.approx(1e-3)
            assert layer.momentum == pytest.approx(0.99)
        else:
            assert layer.use_bias


def test_backbone_registry():
    assert resnet.BACKBONES["resnet50"] == [3, 4, 6, 3]
    assert resnet.BACKBONES["resnet101"] == [3, 4, 23, 3]
    assert resnet.BACKBONES["resnet_tiny"] == [1, 1, 1, 1]
    r101 = resnet.ResNet("resnet101")
    names = r101.blocks()
    assert len(names) == 33
    assert "res4w_branch2c" in r101.named_layers()
    with pytest.raises(ValueError, match="resnet50"):
        resnet.ResNet("resnet7")
    with pytest.raises(ValueError, match="pooling"):
        resnet.ResNet("resnet_tiny", pooling="sum")


@pytest.mark.parametrize("pooling", ["avg", "max", "gem", None])
def test_pooling_options(pooling):
    model = resnet.ResNet("resnet_tiny", pooling=pooling)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[3, 4], minval=-1, maxval=1)
    output, endpoints = model(images)
    block4 = endpoints["block4"].numpy()
    if pooling is None:
        np.testing.assert_array_equal(output.numpy(), block4)
        return
    assert output.shape == (2, 2048)
    expected = {"avg": block4.mean(axis=(1, 2)), "max": block4.max(axis=(1, 2)),
                "gem": np.mean(np.maximum(block4, 1e-6) ** 3, axis=(1, 2)) ** (1 / 3)}[pooling]
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_embedding_layer_is_linear_with_bias():
    model = resnet.ResNet("resnet_tiny", pooling="gem", embedding_layer=True,
                          embedding_layer_dim=16)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[5, 6], minval=-1, maxval=1)
    output, endpoints = model(images)
    assert output.shape == (2, 16)
    layer = model.embedding_layer
    layer.bias.assign(tf.random.stateless_normal([16], seed=[7, 8]))
    output, endpoints = model(images)
    pooled = delf_layers.gem(endpoints["block4"], power=3.0).numpy()
    expected = pooled @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone,blocks,channels", [("resnet18", [2, 2, 2, 2], 512),
                                                       ("resnet34", [3, 4, 6, 3], 512)])
def test_basic_block_backbones(backbone, blocks, channels):
    assert resnet.BACKBONES[backbone] == blocks
    model = resnet.ResNet(backbone, block3_strides=False, pooling=None)
    images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[1, 1], minval=-1, maxval=1)
    output, endpoints = model(images)
    assert [endpoints[f"block{i}"].shape[-1] for i in range(1, 5)] == [64, 128, 256, 512]
    assert output.shape == (1, 2, 2, channels) and model.output_channels == channels
    named = model.named_layers()
    # 3x3 convs on both branches; stage 2 keeps width and stride, so no projection there.
    assert named["res2a_branch2a"].kernel.shape == (3, 3, 64, 64)
    assert "res2a_branch1" not in named and "res3a_branch1" in named
    assert named["res3a_branch2a"].strides == (2, 2)
    assert "res2a_branch2c" not in named
    last = f"res5{resnet.block_letter(blocks[3] - 1)}_branch2b"
    assert last in named and len(model.blocks()) == sum(blocks)


def test_drop_last_stage():
    model = resnet.ResNet("resnet_tiny", pooling="gem", drop_last_stage=True)
    images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[2, 2], minval=-1, maxval=1)
    output, endpoints = model(images)
    assert "block4" not in endpoints and not any(n.startswith("res5") for n in
                                                 model.named_layers())
    # No stage-5 stride to move: block3 keeps stride 16 (64 -> 4).
    assert endpoints["block3"].shape == (1, 4, 4, 1024) and output.shape == (1, 1024)
    assert model.output_channels == 1024
    r18 = resnet.ResNet("resnet18", pooling=None, drop_last_stage=True)
    assert r18(images)[0].shape == (1, 4, 4, 256)


def test_geometry_of_resnet50_is_the_originals():
    from delf_tf.extraction import feature_extractor

    spec = resnet.BACKBONE_SPECS["resnet50"]
    for block3_strides, stride in ((False, 16), (True, 32)):
        geometry = resnet.stage_geometry(spec, 3, block3_strides)
        assert (geometry.stride, geometry.receptive_field, geometry.padding) == (
            stride, feature_extractor.RECEPTIVE_FIELD, feature_extractor.RECEPTIVE_PADDING)
    # block3_strides moves stage 5's stride: block4 keeps stride 32.
    assert resnet.stage_geometry(spec, 4, True).stride == 32


@pytest.mark.parametrize("backbone, block3_strides",
                         [("resnet_tiny", False), ("resnet18", False), ("resnet_tiny", True)])
def test_receptive_field_is_what_the_network_sees(backbone, block3_strides):
    """The input pixels that move one block3 cell span exactly the stated field."""
    net = resnet.ResNet(backbone, block3_strides=block3_strides, pooling=None)
    geometry = net.feature_geometry("block3")
    image = tf.Variable(tf.random.stateless_normal([1, 256, 256, 3], seed=[1, 2]))
    with tf.GradientTape() as tape:
        _, endpoints = net(image, training=False)
        block3 = endpoints["block3"]
        centre = (block3.shape[1] // 2, block3.shape[2] // 2)
        value = tf.reduce_sum(block3[0, centre[0], centre[1]])
    moved = np.abs(tape.gradient(value, image).numpy()[0]).sum(axis=-1) > 0
    rows, cols = np.nonzero(moved.any(axis=1))[0], np.nonzero(moved.any(axis=0))[0]
    assert rows.max() - rows.min() + 1 == geometry.receptive_field
    assert cols.max() - cols.min() + 1 == geometry.receptive_field
    assert 256 // block3.shape[1] == geometry.stride

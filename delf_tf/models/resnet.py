"""ResNet v1 backbones (ResNet-18/34/50/101) built from a stage spec, with the original's names.

The stem is conv1 (7x7/2, 'same') -> bn_conv1 -> ReLU -> max-pool 3x3/2 ('valid'), then four
stages of blocks: bottleneck blocks (1x1 -> 3x3 -> 1x1) for ResNet-50/101, basic blocks
(3x3 -> 3x3) for ResNet-18/34. Stages are numbered 2..5 as in the original layer names
(res2a_branch2a, bn5c_branch2c, ...) and exposed as endpoints block1..block4.
`drop_last_stage=True` leaves out stage 5 (HOW's "¬R50"): the output is block3.
"""

import dataclasses
import string

import keras
import tensorflow as tf

from delf_tf.models import layers as delf_layers

__all__ = [
    "BackboneSpec", "BOTTLENECK_FILTERS", "BASIC_FILTERS", "STAGE_FILTERS", "BACKBONE_SPECS",
    "BACKBONES", "FeatureGeometry", "stage_geometry", "MIN_INPUT_SIZE", "BN_EPSILON",
    "BN_MOMENTUM", "POOLINGS", "block_letter", "Bottleneck", "BasicBlock", "ResNet",
]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Blocks per stage (stages 2..5) and the block kind, "bottleneck" or "basic"."""

    blocks: tuple[int, int, int, int]
    block_type: str = "bottleneck"

    def stage_filters(self) -> list[tuple[int, ...]]:
        """Per stage: (branch2a, branch2b, branch2c) filters, or (branch2a, branch2b) if basic."""
        return BOTTLENECK_FILTERS if self.block_type == "bottleneck" else BASIC_FILTERS

    def stage_channels(self) -> list[int]:
        """Output channels of stages 2..5 (endpoints block1..block4)."""
        return [filters[-1] for filters in self.stage_filters()]


# Filters (branch2a, branch2b, branch2c) of bottleneck stages 2..5.
BOTTLENECK_FILTERS: list[tuple[int, int, int]] = [
        (64, 64, 256), (128, 128, 512), (256, 256, 1024), (512, 512, 2048)]
# Filters (branch2a, branch2b) of basic-block stages 2..5.
BASIC_FILTERS: list[tuple[int, int]] = [(64, 64), (128, 128), (256, 256), (512, 512)]
STAGE_FILTERS = BOTTLENECK_FILTERS

# resnet_tiny keeps the full ResNet-50 widths with one block per stage, so every head and the
# weight import see the same shapes as ResNet-50, at a fraction of the cost.
BACKBONE_SPECS: dict[str, BackboneSpec] = {
        "resnet18": BackboneSpec((2, 2, 2, 2), "basic"),
        "resnet34": BackboneSpec((3, 4, 6, 3), "basic"),
        "resnet50": BackboneSpec((3, 4, 6, 3)),
        "resnet101": BackboneSpec((3, 4, 23, 3)),
        "resnet_tiny": BackboneSpec((1, 1, 1, 1)),
}
# Blocks per stage, by backbone name.
BACKBONES: dict[str, list[int]] = {name: list(spec.blocks)
                                   for name, spec in BACKBONE_SPECS.items()}

@dataclasses.dataclass(frozen=True)
class FeatureGeometry:
    """Where the cells of a feature map sit in the input image, in pixels.

    Cell (i, j) sees the receptive box [stride*i - padding, stride*j - padding,
    stride*i - padding + receptive_field - 1, ...], centred on (stride*i, stride*j).
    """

    stride: int
    receptive_field: int

    @property
    def padding(self) -> int:
        return (self.receptive_field - 1) // 2


def stage_geometry(spec: BackboneSpec, num_stages: int,
                   block3_strides: bool = False) -> FeatureGeometry:
    """Geometry of the map after `num_stages` stages (1..4: endpoints block1..block4) of this
    package's ResNets: stem 7x7/2 conv + 3x3/2 max-pool, each stage's stride on its first
    block's first conv (a 1x1 in a bottleneck, a 3x3 in a basic block), stages 3..5 strided;
    block3_strides moves stage 5's stride to a 1x1/2 max-pool right after block3.
    ResNet-50's block3: stride 16 (32 with block3_strides), receptive field 291 (the
    original's constants)."""
    field, stride = 7 + 2 * 2, 4  # after the stem
    kernels = (3, 3) if spec.block_type == "basic" else (1, 3, 1)
    for stage in range(num_stages):
        stage_stride = 1 if stage == 0 or (stage == 3 and block3_strides) else 2
        for block in range(spec.blocks[stage]):
            for position, kernel in enumerate(kernels):
                field += (kernel - 1) * stride
                if block == 0 and position == 0:
                    stride *= stage_stride
        if stage == 2 and block3_strides:
            stride *= 2  # the 1x1/2 max-pool: no wider field
    return FeatureGeometry(stride, field)


# The stem (7x7/2 'same' conv, then a 3x3/2 'valid' max-pool) needs a 3x3 map after the conv,
# so an input side below 5 px leaves the max-pool a negative-size window.
MIN_INPUT_SIZE = 5

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
POOLINGS = ("avg", "max", "gem", None)


def block_letter(index: int) -> str:
    """0 -> 'a', 1 -> 'b', ... (the original's block suffix; 23 blocks fit in the alphabet)."""
    return string.ascii_lowercase[index]


def _conv(filters: int, kernel_size: int, strides: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=True, name=name)


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                           name=name)


class _ResidualBlock(keras.layers.Layer):
    """Residual block: conv+BN branches 2a, 2b[, 2c] with ReLUs between them, plus the
    shortcut (identity, or conv+BN branch1 when `projection`), ReLU after the sum.

    The stride sits on branch2a (and branch1), as in ResNet v1.
    """

    def __init__(self, stage: int, block: int, filters: tuple[int, ...],
                 kernel_sizes: tuple[int, ...], strides: int, projection: bool, **kwargs):
        prefix = f"{stage}{block_letter(block)}"
        super().__init__(name=f"res{prefix}", **kwargs)
        self._branch_letters = string.ascii_lowercase[:len(filters)]
        # Attribute names follow the original's TF2 blocks, so checkpoint paths read the same.
        for i, (letter, width, kernel) in enumerate(
                zip(self._branch_letters, filters, kernel_sizes, strict=True)):
            setattr(self, f"conv2{letter}", _conv(width, kernel, strides if i == 0 else 1,
                                                  f"res{prefix}_branch2{letter}"))
            setattr(self, f"bn2{letter}", _bn(f"bn{prefix}_branch2{letter}"))
        if projection:
            self.conv_shortcut = _conv(filters[-1], 1, strides, f"res{prefix}_branch1")
            self.bn_shortcut = _bn(f"bn{prefix}_branch1")
        else:
            self.conv_shortcut = None
            self.bn_shortcut = None

    def build(self, input_shape):
        # Sub-layers build on the first real call; skips Keras' default symbolic trace.
        self.built = True

    def _branch(self, letter: str) -> tuple[keras.layers.Layer, keras.layers.Layer]:
        return getattr(self, f"conv2{letter}"), getattr(self, f"bn2{letter}")

    def named_layers(self) -> list[keras.layers.Layer]:
        """The conv/BN layers carrying weights, in file order."""
        out = [layer for letter in self._branch_letters for layer in self._branch(letter)]
        if self.conv_shortcut is not None:
            out += [self.conv_shortcut, self.bn_shortcut]
        return out

    def call(self, x, training=False):
        y = x
        for i, letter in enumerate(self._branch_letters):
            conv, bn = self._branch(letter)
            y = bn(conv(tf.nn.relu(y) if i else y), training=training)
        if self.conv_shortcut is not None:
            shortcut = self.bn_shortcut(self.conv_shortcut(x), training=training)
        else:
            shortcut = x
        return tf.nn.relu(y + shortcut)


class Bottleneck(_ResidualBlock):
    """Bottleneck block 1x1 -> 3x3 -> 1x1 (+ shortcut); the stride sits on branch2a as in v1.

    A projection shortcut (branch1) is used for the first block of each stage.
    """

    def __init__(self, stage: int, block: int, filters: tuple[int, int, int], strides: int,
                 projection: bool, **kwargs):
        super().__init__(stage, block, filters, (1, 3, 1), strides, projection, **kwargs)


class BasicBlock(_ResidualBlock):
    """Basic block 3x3 -> 3x3 (+ shortcut); the stride sits on branch2a.

    A projection shortcut (branch1) is used where the block changes stride or width.
    """

    def __init__(self, stage: int, block: int, filters: tuple[int, int], strides: int,
                 projection: bool, **kwargs):
        super().__init__(stage, block, filters, (3, 3), strides, projection, **kwargs)


class ResNet(keras.Model):
    """ResNet v1 backbone.

    call(images [B,H,W,3] float, training) -> (output, endpoints) where output is the pooled
    (and optionally embedded) descriptor [B,D] or the last stage's map [B,h,w,C] when pooling
    is None, and endpoints maps "block0" (after the stem ReLU), "block0mp", "block1".."block4"
    (no "block4" with drop_last_stage) to feature maps.

    `min_input_size` is the smallest image side (pixels) the network accepts; `output_channels`
    is C of the last stage (2048 for ResNet-50/101, 512 for ResNet-18/34; 1024 / 256 with
    drop_last_stage).

    block3_strides=True moves the stride of stage 5 to a 1x1/2 max-pool right after stage 4, so
    block3 has stride 32 (321x321 -> 10x10x1024) like block4; with False block3 has stride 16.
    With drop_last_stage there is no stage 5 stride to move: block3 keeps stride 16.
    """

    def __init__(self, backbone: str = "resnet50", *, block3_strides: bool = True,
                 pooling: str | None = "avg", gem_power: float = 3.0,
                 embedding_layer: bool = False, embedding_layer_dim: int = 2048,
                 drop_last_stage: bool = False, name: str = "resnet", **kwargs):
        super().__init__(name=name, **kwargs)
        if backbone not in BACKBONE_SPECS:
            raise ValueError(f"Unknown backbone {backbone!r}; expected one of "
                             f"{sorted(BACKBONE_SPECS)}")
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of {POOLINGS}")
        spec = BACKBONE_SPECS[backbone]
        num_stages = 3 if drop_last_stage else 4
        self.backbone_name = backbone
        self.spec = spec
        self.drop_last_stage = drop_last_stage
        self.output_channels = spec.stage_channels()[num_stages - 1]
        self.min_input_size = MIN_INPUT_SIZE
        self.block3_strides = block3_strides and not drop_last_stage
        self.pooling = pooling
        self.gem_power = gem_power

        self.conv1 = keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=True,
                                         name="conv1")
        self.bn_conv1 = _bn("bn_conv1")
        self.max_pool = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="pool1")

        # Blocks are attributes l2a, l2b, ..., l5c (the original's names): tf.train.Checkpoint
        # does not see layers held in a Keras 3 list. stage_blocks[i] names stage i + 2's blocks.
        self.stage_blocks: list[list[str]] = []
        block_class = Bottleneck if spec.block_type == "bottleneck" else BasicBlock
        in_channels = 64
        for stage_index, (num_blocks, filters) in enumerate(
                zip(spec.blocks[:num_stages], spec.stage_filters())):
            stage = stage_index + 2
            stride = 1 if stage == 2 or (stage == 5 and block3_strides) else 2
            names = []
            for b in range(num_blocks):
                attribute = f"l{stage}{block_letter(b)}"
                block_stride = stride if b == 0 else 1
                projection = b == 0 and (block_stride != 1 or in_channels != filters[-1])
                setattr(self, attribute, block_class(stage, b, filters, block_stride,
                                                     projection=projection))
                names.append(attribute)
                in_channels = filters[-1]
            self.stage_blocks.append(names)
        self.block3_pool = (keras.layers.MaxPooling2D(1, strides=2, padding="valid",
                                                      name="block3_pool")
                            if self.block3_strides else None)

        if pooling == "gem":
            self.global_pool = delf_layers.GeM(power=gem_power, name="gem_pool")
        elif pooling == "avg":
            self.global_pool = keras.layers.GlobalAveragePooling2D(name="avg_pool")
        elif pooling == "max":
            self.global_pool = keras.layers.GlobalMaxPooling2D(name="max_pool")
        else:
            self.global_pool = None
        self.embedding_layer = (keras.layers.Dense(embedding_layer_dim, name="embedding_layer")
                                if embedding_layer else None)

    def build(self, input_shape):
        # Sub-layers build on the first real call; skips Keras' default symbolic trace of the
        # whole network (which doubled the cost of building a model).
        self.built = True

    def feature_geometry(self, endpoint: str = "block3") -> FeatureGeometry:
        """Stride and receptive field (input pixels) of endpoint "block1".."block4"."""
        return stage_geometry(self.spec, int(endpoint.removeprefix("block")),
                              self.block3_strides)

    def blocks(self) -> list[keras.layers.Layer]:
        """All blocks (Bottleneck or BasicBlock) in order."""
        return [getattr(self, a) for names in self.stage_blocks for a in names]

    def named_layers(self) -> dict[str, keras.layers.Layer]:
        """Every layer with ImageNet weights, by its original name (conv1, bn_conv1, res2a_...)."""
        out = {"conv1": self.conv1, "bn_conv1": self.bn_conv1}
        for block in self.blocks():
            out.update({layer.name: layer for layer in block.named_layers()})
        return out

    def build_call(self, inputs, training: bool = True, intermediates_dict=None):
        """The original's ResNet50.build_call: the pooled (or embedded) output; when
        `intermediates_dict` is a dict it receives the endpoints by name ("block0",
        "block0mp", "block1".."block4")."""
        output, endpoints = self(inputs, training=training)
        if intermediates_dict is not None:
            intermediates_dict.update(endpoints)
        return output

    def call(self, images, training=False):
        endpoints = {}
        x = tf.nn.relu(self.bn_conv1(self.conv1(images), training=training))
        endpoints["block0"] = x
        x = self.max_pool(x)
        endpoints["block0mp"] = x
        for stage_index, names in enumerate(self.stage_blocks):
            for attribute in names:
                x = getattr(self, attribute)(x, training=training)
            if stage_index == 2 and self.block3_pool is not None:
                x = self.block3_pool(x)
            endpoints[f"block{stage_index + 1}"] = x
        if self.global_pool is None:
            return x, endpoints
        x = self.global_pool(x)
        if self.embedding_layer is not None:
            x = self.embedding_layer(x)
        return x, endpoints

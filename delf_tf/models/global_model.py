"""GlobalFeatureNet: a global descriptor trained on image tuples (the original's global model).

backbone (ResNet by name) -> pooling (mac / spoc / gem) -> L2 -> optional whitening (a learnable
fully connected layer) -> L2. A port of cnnimageretrieval-pytorch's ImageRetrievalNet.
"""

from typing import Any

import keras

from delf_tf.models import checkpoint, lazy_build, normalization, resnet
from delf_tf.models import pooling as pooling_lib

__all__ = ["backbone_name", "GlobalFeatureNet", "save_global_model", "load_global_model"]


def backbone_name(architecture: str) -> str:
    """'ResNet101' / 'resnet101' -> 'resnet101' (the original's --arch spelling accepted)."""
    name = architecture.lower().replace("-", "").replace("_", "")
    if name == "resnettiny":
        name = "resnet_tiny"
    if name not in resnet.BACKBONE_SPECS:
        raise ValueError(f"Unknown architecture {architecture!r}; expected one of "
                         f"{sorted(resnet.BACKBONE_SPECS)} (any case)")
    return name


class GlobalFeatureNet(lazy_build.BuiltOnFirstCall, keras.Model):
    """call(images [B,H,W,3] float32 (normalised as `normalize_images`), training) ->
    L2-normalised descriptors float32 [B,D].

    D is the backbone's last-stage width (2048 for ResNet-50/101, 512 for ResNet-18/34; half
    with drop_last_stage), or `whitening_dim` when given. `meta` carries the original's
    description (architecture, pooling, whitening, outputdim).
    """

    def __init__(self, architecture: str = "ResNet101", pooling: str = "gem",
                 whitening: bool = False, *, gem_power: float = 3.0,
                 trainable_gem_power: bool = False, drop_last_stage: bool = False,
                 whitening_dim: int | None = None, name: str = "GlobalFeatureNet"):
        super().__init__(name=name)
        self.model_config: dict[str, Any] = {
                "architecture": architecture, "pooling": pooling,
                "whitening": whitening, "gem_power": gem_power,
                "trainable_gem_power": trainable_gem_power, "drop_last_stage": drop_last_stage,
                "whitening_dim": whitening_dim, "name": name}
        self.backbone = resnet.ResNet(backbone_name(architecture), pooling=None,
                                      block3_strides=False, drop_last_stage=drop_last_stage,
                                      name="backbone")
        self.pool = pooling_lib.make_pooling(pooling, gem_power=gem_power,
                                         trainable_power=trainable_gem_power, layer_name="pool")
        self.normalize = normalization.L2Normalization(name="l2_normalization")
        output_dim = self.backbone.output_channels
        self.whiten = None
        if whitening:
            output_dim = whitening_dim or output_dim
            self.whiten = keras.layers.Dense(output_dim, use_bias=True, name="whiten")
        self.min_input_size = self.backbone.min_input_size
        self.meta = {"architecture": architecture, "pooling": pooling,
                     "whitening": whitening, "outputdim": output_dim}

    def feature_map(self, images, training=False):
        """The backbone's last feature map [B,h,w,C] (before pooling)."""
        return self.backbone(images, training=training)[0]

    def call(self, images, training=False):
        x = self.normalize(self.pool(self.feature_map(images, training=training)))
        if self.whiten is not None:
            x = self.normalize(self.whiten(x))
        return x

    def multi_scale_power(self) -> float:
        """The power of the GeM over per-scale descriptors (the original's msp): the learnt
        GeM p for gem pooling without whitening, else 1 (the mean)."""
        if isinstance(self.pool, pooling_lib.GeM) and self.whiten is None:
            return self.pool.current_power()
        return 1.0


def save_global_model(model: GlobalFeatureNet, prefix: str) -> None:
    """tf.train.Checkpoint(model=model) at `prefix`, plus `<prefix>.json` describing it."""
    checkpoint.save_described(model, prefix)


def load_global_model(prefix: str) -> GlobalFeatureNet:
    """Rebuilds the GlobalFeatureNet described by `<prefix>.json` and restores its weights."""
    return checkpoint.load_described(GlobalFeatureNet, prefix)

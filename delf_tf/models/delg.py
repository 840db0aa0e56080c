"""DELG: DELF + a GeM/embedding global descriptor trained with a cosine (ArcFace) classifier."""

import keras

from delf_tf.models import delf
from delf_tf.models import layers as delf_layers

__all__ = ["Delg"]


class Delg(delf.Delf):
    """DELG model (Cao et al. 2020).

    Global descriptor: GeM(p) over block4 then a linear embedding (un-normalised here; the
    cosine classifier and the exporters L2-normalise it). Training logits for the global branch:
    scale_factor * cos(theta) with an ArcFace margin on the true class. Checkpoint names:
    backbone, attention, autoencoder, att_fc, cosine_weights [Dg, C], scale_factor.
    """

    def __init__(self, *, backbone: str = "resnet50", block3_strides: bool = True,
                 gem_power: float = 3.0, embedding_layer_dim: int = 2048,
                 scale_factor_init: float = 45.25, learnable_scale: bool = False,
                 arcface_margin: float = 0.1, use_dim_reduction: bool = True,
                 reduced_dimension: int = 128, dim_expand_channels: int = 1024,
                 name: str = "DELG"):
        super().__init__(backbone=backbone, block3_strides=block3_strides, pooling="gem",
                         gem_power=gem_power, embedding_layer=True,
                         embedding_layer_dim=embedding_layer_dim,
                         use_dim_reduction=use_dim_reduction,
                         reduced_dimension=reduced_dimension,
                         dim_expand_channels=dim_expand_channels, name=name)
        self.model_config = dict(
                backbone=backbone, block3_strides=block3_strides, gem_power=gem_power,
                embedding_layer_dim=embedding_layer_dim, scale_factor_init=scale_factor_init,
                learnable_scale=learnable_scale, arcface_margin=arcface_margin,
                use_dim_reduction=use_dim_reduction, reduced_dimension=reduced_dimension,
                dim_expand_channels=dim_expand_channels, name=name)
        self.embedding_layer_dim = embedding_layer_dim
        self.arcface_margin = arcface_margin
        # add_weight, not tf.Variable: Keras 3 does not track raw variables.
        self.scale_factor = self.add_weight(
                name="scale_factor", shape=(), dtype="float32",
                initializer=keras.initializers.Constant(scale_factor_init),
                trainable=learnable_scale)
        self.cosine_weights = None

    def _create_global_classifier(self, num_classes: int) -> None:
        self.cosine_weights = self.add_weight(
                name="cosine_weights", shape=(self.embedding_layer_dim, num_classes),
                dtype="float32", initializer="glorot_uniform", trainable=True)

    def _global_logits(self, global_descriptor, labels, training):
        cosine = delf_layers.cosine_logits(global_descriptor, self.cosine_weights)
        if not training:
            labels = None
        return delf_layers.arcface_logits(cosine, labels, self.arcface_margin, self.scale_factor)

    def variable_groups(self) -> dict[str, list]:
        groups = super().variable_groups()
        groups["desc_fc"] = [self.cosine_weights] if self.cosine_weights is not None else []
        if self.scale_factor.trainable:
            groups["desc_fc"].append(self.scale_factor)
        return groups

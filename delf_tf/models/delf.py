"""DELF: ResNet backbone + attention (+ optional autoencoder) with softmax classifiers."""

from typing import Any

import keras
import tensorflow as tf

from delf_tf.models import layers as delf_layers
from delf_tf.models import resnet

__all__ = ["Delf"]


class Delf(keras.Model):
    """DELF model (Noh et al. 2017), TF2 layout of the original.

    Sub-modules (also the checkpoint names): backbone (ResNet), attention, autoencoder (None
    without dim reduction), desc_fc and att_fc (None until `init_classifiers`).
    """

    def __init__(self, *, backbone: str = "resnet50", block3_strides: bool = True,
                 pooling: str | None = "avg", gem_power: float = 3.0,
                 embedding_layer: bool = False, embedding_layer_dim: int = 2048,
                 use_dim_reduction: bool = True, reduced_dimension: int = 128,
                 dim_expand_channels: int = 1024, name: str = "DELF"):
        super().__init__(name=name)
        if use_dim_reduction and dim_expand_channels != resnet.STAGE_FILTERS[2][2]:
            raise ValueError(
                    f"dim_expand_channels={dim_expand_channels}: the autoencoder reconstructs "
                    f"block3, which has {resnet.STAGE_FILTERS[2][2]} channels")
        # Constructor kwargs, written next to exported weights so `load_model` can rebuild.
        self.model_config: dict[str, Any] = dict(
                backbone=backbone, block3_strides=block3_strides, pooling=pooling,
                gem_power=gem_power, embedding_layer=embedding_layer,
                embedding_layer_dim=embedding_layer_dim, use_dim_reduction=use_dim_reduction,
                reduced_dimension=reduced_dimension, dim_expand_channels=dim_expand_channels,
                name=name)
        self.num_classes: int | None = None
        self.backbone = resnet.ResNet(
                backbone, block3_strides=block3_strides, pooling=pooling, gem_power=gem_power,
                embedding_layer=embedding_layer, embedding_layer_dim=embedding_layer_dim,
                name="backbone")
        self.attention = delf_layers.Attention(name="attention")
        self.autoencoder = (delf_layers.Autoencoder(reduced_dimension, dim_expand_channels,
                                                    name="autoencoder")
                            if use_dim_reduction else None)
        self.desc_fc = None
        self.att_fc = None

    # -- classifiers -----------------------------------------------------------------------

    def init_classifiers(self, num_classes: int) -> None:
        """Creates the training heads for `num_classes` classes (desc_fc and att_fc).

        Calling it again with the same number is a no-op; a different number is an error
        (stale head variables would stay tracked by Keras).
        """
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if self.num_classes is not None:
            if self.num_classes != num_classes:
                raise ValueError(f"{self.name} already has classifiers for {self.num_classes} "
                                 f"classes; cannot re-create them for {num_classes}")
            return
        # Keras 3 forbids new state on a built model; heads may be added after build_for_input
        # (e.g. fine-tuning a restored model), so the tracker is unlocked around their creation.
        was_locked = self._tracker.locked
        self._tracker.unlock()
        try:
            self._create_global_classifier(int(num_classes))
            self.att_fc = keras.layers.Dense(int(num_classes), name="att_fc")
            self.num_classes = int(num_classes)
        finally:
            if was_locked:
                self._lock_state()

    def _create_global_classifier(self, num_classes: int) -> None:
        self.desc_fc = keras.layers.Dense(num_classes, name="desc_fc")

    # -- forward ---------------------------------------------------------------------------

    def _global_logits(self, global_descriptor, labels, training):
        return self.desc_fc(global_descriptor)

    def _local_branch(self, block3, training):
        """block3 (stop-gradient'ed) -> attention and local features."""
        outputs = {}
        if self.autoencoder is not None:
            reduced, expanded = self.autoencoder(block3)
            attn_pooled, prob, score = self.attention(block3, targets=expanded, training=training)
            outputs["local_features"] = reduced
            outputs["expanded"] = expanded
        else:
            attn_pooled, prob, score = self.attention(block3, training=training)
            outputs["local_features"] = block3
        outputs["attention_prob"] = prob
        outputs["attention_score"] = score
        return attn_pooled, outputs

    def forward(self, images, labels=None, training: bool = False) -> dict[str, tf.Tensor]:
        """Training/eval pass. images: normalised float32 [B,H,W,3]; labels: int [B] or None.

        Returns float32 tensors: global_descriptor [B,Dg], desc_logits and attn_logits
        [B,num_classes] (when classifiers exist), attention_prob / attention_score [B,h,w,1],
        block3 [B,h,w,1024] (stop-gradient'ed), local_features [B,h,w,C], expanded
        [B,h,w,dim_expand_channels] (autoencoder only).
        """
        global_descriptor, endpoints = self.backbone(images, training=training)
        # Attention and autoencoder train on frozen backbone features: their losses must never
        # reach the backbone.
        block3 = tf.stop_gradient(endpoints["block3"])
        attn_pooled, outputs = self._local_branch(block3, training)
        outputs["block3"] = block3
        outputs["global_descriptor"] = global_descriptor
        if self.num_classes is not None:
            outputs["desc_logits"] = self._global_logits(global_descriptor, labels, training)
            outputs["attn_logits"] = self.att_fc(attn_pooled)
        return {key: tf.cast(value, tf.float32) for key, value in outputs.items()}

    def global_and_local_forward_pass(self, images, training: bool = True):
        """The original's training forward, by its name and output order.

        images: normalised float32 [B,H,W,3]. Returns (desc_prelogits [B,Dg] (the global
        descriptor), attn_prelogits [B,C] (attention-pooled features), attn_scores
        [B,h,w,1] (attention probabilities), backbone_blocks {"block0".."block4": map},
        dim_expanded_features [B,h,w,1024] or None, dim_reduced_features [B,h,w,D'] or
        None). block3 is stop-gradient'ed before the attention and the autoencoder.
        """
        backbone_blocks: dict[str, tf.Tensor] = {}
        desc_prelogits = self.backbone.build_call(images, training=training,
                                                  intermediates_dict=backbone_blocks)
        block3 = tf.stop_gradient(backbone_blocks["block3"])
        attn_prelogits, outputs = self._local_branch(block3, training)
        expanded = outputs.get("expanded")
        reduced = outputs["local_features"] if self.autoencoder is not None else None
        return (desc_prelogits, attn_prelogits, outputs["attention_prob"], backbone_blocks,
                expanded, reduced)

    @property
    def min_input_size(self) -> int:
        """Smallest image side (pixels) the network accepts (the backbone's)."""
        return self.backbone.min_input_size

    @property
    def feature_geometry(self) -> resnet.FeatureGeometry:
        """Where the local-feature cells sit (input pixels): the stride, receptive field and
        padding of this backbone's block3, which the local branch reads. ResNet-50's are the
        original's constants (stride 16, or 32 with block3_strides; field 291, padding 145);
        other backbones have their own (ResNet-101: 835; resnet_tiny: 67). Keypoint
        locations (box centres) depend on the stride only."""
        return self.backbone.feature_geometry("block3")

    def build_call(self, images, training: bool = False):
        """Inference: images [B,H,W,3] normalised float32 -> (global_descriptor [B,Dg],
        attention_prob [B,h,w,1], local_features [B,h,w,C]), all float32."""
        global_descriptor, endpoints = self.backbone(images, training=training)
        _, outputs = self._local_branch(endpoints["block3"], training)
        return (tf.cast(global_descriptor, tf.float32),
                tf.cast(outputs["attention_prob"], tf.float32),
                tf.cast(outputs["local_features"], tf.float32))

    def call(self, images, training=False):
        return self.build_call(images, training=training)

    def build(self, input_shape):
        # Sub-layers build on the first real call (no symbolic trace of `call`).
        self.built = True

    def build_for_input(self, image_size: int = 64) -> None:
        """Creates every variable (heads included) by one real call on zeros [1,s,s,3].

        Needed before restoring a checkpoint and inside strategy.scope() (Keras 3 builds lazily).
        """
        images = tf.zeros([1, image_size, image_size, 3], tf.float32)
        labels = tf.zeros([1], tf.int32) if self.num_classes is not None else None
        self.forward(images, labels=labels, training=False)
        if not self.built:
            self.build_call(images)
        self.built = True

    # -- variable groups ---------------------------------------------------------------------

    def variable_groups(self) -> dict[str, list]:
        """Trainable variables by head: backbone, attention, autoencoder, desc_fc, att_fc."""
        def variables(layer):
            return list(layer.trainable_variables) if layer is not None else []

        return {"backbone": variables(self.backbone), "attention": variables(self.attention),
                "autoencoder": variables(self.autoencoder), "desc_fc": variables(self.desc_fc),
                "att_fc": variables(self.att_fc)}

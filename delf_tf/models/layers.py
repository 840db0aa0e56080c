"""DELF/DELG heads: GeM pooling, attention, autoencoder and the cosine (ArcFace) classifier.

The maths lives in plain functions (`cosine_logits`, `arcface_logits`; `gem` lives with the
other poolings in `delf_tf.models.pooling` and is re-exported here); the layers are thin
wrappers that hold weights.
"""

import math

import keras
import tensorflow as tf

from delf_tf.models.pooling import GEM_EPSILON, GeM, gem  # noqa: F401  (re-exported)

__all__ = ["ARCFACE_COS_EPSILON", "cosine_logits", "arcface_logits", "Attention", "Autoencoder"]

# Cosines are clamped into [-1 + eps, 1 - eps] before acos: d acos / dx is infinite at +-1.
ARCFACE_COS_EPSILON = 1e-6


def cosine_logits(embeddings, class_weights):
    """cos(theta) between rows of embeddings [B,D] and columns of class_weights [D,C] -> [B,C].

    Both are L2-normalised (in float32, so mixed precision does not lose the unit norm).
    """
    embeddings = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=1)
    class_weights = tf.math.l2_normalize(tf.cast(class_weights, tf.float32), axis=0)
    return tf.matmul(embeddings, class_weights)


def arcface_logits(cosine, labels, margin: float, scale):
    """ArcFace logits s * cos(theta + m) on the true class, s * cos(theta) elsewhere.

    cosine: float32 [B,C]; labels: int [B]. Where theta > pi - m, cos(theta + m) would no longer
    decrease with theta, so those entries keep cos(theta). Pass labels=None for plain s * cos.
    """
    cosine = tf.cast(cosine, tf.float32)
    scale = tf.cast(scale, tf.float32)
    if labels is None or margin == 0.0:
        return scale * cosine
    clamped = tf.clip_by_value(cosine, -1.0 + ARCFACE_COS_EPSILON, 1.0 - ARCFACE_COS_EPSILON)
    theta = tf.acos(clamped)
    with_margin = tf.where(theta <= math.pi - margin, tf.cos(theta + margin), cosine)
    is_true = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(cosine)[1], on_value=True,
                         off_value=False, dtype=tf.bool)
    return scale * tf.where(is_true, with_margin, cosine)


class Attention(keras.layers.Layer):
    """DELF attention: conv 1x1 512 -> BN -> ReLU -> conv 1x1 1 -> softplus.

    call(features [B,h,w,C], targets [B,h,w,Ct] or None (= features), training) ->
    (pooled [B,Ct], prob [B,h,w,1], score [B,h,w,1]); pooled is the attention-weighted mean of
    the L2-normalised targets.
    """

    def __init__(self, hidden_channels: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(hidden_channels, 1, name="attn_conv1")
        self.bn_conv1 = keras.layers.BatchNormalization(axis=-1, name="bn_conv1")
        self.conv2 = keras.layers.Conv2D(1, 1, name="attn_conv2")

    def build(self, input_shape):
        # Sub-layers build on the first real call (no symbolic trace of `call`).
        self.built = True

    def call(self, features, targets=None, training=False):
        if targets is None:
            targets = features
        x = tf.nn.relu(self.bn_conv1(self.conv1(features), training=training))
        score = self.conv2(x)
        prob = tf.nn.softplus(score)
        # float32: l2_normalize's epsilon underflows in float16 and ReLU'd targets can be all 0.
        normalized = tf.math.l2_normalize(tf.cast(targets, tf.float32), axis=-1)
        pooled = tf.reduce_mean(normalized * tf.cast(prob, tf.float32), axis=[1, 2])
        return pooled, prob, score


class Autoencoder(keras.layers.Layer):
    """DELG dimensionality reduction: conv 1x1 to reduced_dimension (linear), back with ReLU.

    call(x [B,h,w,C]) -> (reduced [B,h,w,reduced_dimension], expanded [B,h,w,expand_channels]).
    """

    def __init__(self, reduced_dimension: int = 128, expand_channels: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(reduced_dimension, 1, name="autoenc_conv1")
        self.conv2 = keras.layers.Conv2D(expand_channels, 1, activation="relu",
                                         name="autoenc_conv2")

    def build(self, input_shape):
        # Sub-layers build on the first real call (no symbolic trace of `call`).
        self.built = True

    def call(self, x):
        reduced = self.conv1(x)
        return reduced, self.conv2(reduced)

"""The HOW network (Tolias, Jenicek, Chum, ECCV 2020): local descriptors
learned through a sum-pooled global descriptor.

  u     = f(I)                backbone feature map [B, h, w, D]
  w(u)  = ||u||               fixed attention (feature strength), no parameters
  ū     = h(u)                M x M average pooling, stride 1 (local smoothing)
  o(ū)  = P (ū - m)           whitening + reduction to d: a 1x1 convolution with
                              kernel P [D, d] and bias -P m, initialised by PCA
                              whitening (`InitializeWhitening`) and kept fixed
  Z_how = L2(sum_u w(u) o(ū)) the global descriptor optimised in training [B, d]

At test time the same maps give local features: descriptor L2(o(ū)) with
strength w(u) at every feature-map cell (see `delf_tf.how.extraction`).
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from delf_tf.models import checkpoint, lazy_build, normalization, resnet

__all__ = [
    # The original's names (the compatibility surface).
    "LearnPcaWhitening",
    # delf_tf's own API.
    "smooth", "strength", "how_pool", "receptive_field", "HowNet", "save_how_model",
    "load_how_model",
]

_BUILD_IMAGE_SIZE = 64
# How the whitening treats directions of (almost) no variance: eigenvalues
# are floored at this fraction of the largest.
_MIN_EIGENVALUE_RATIO = 1e-9


def smooth(feature_map: tf.Tensor, size: int) -> tf.Tensor:
    """h(u): mean over the size x size neighbourhood of every cell (stride 1),
    over the cells inside the map (no zero padding counted). [B,h,w,D] -> same."""
    if size <= 1:
        return feature_map
    return tf.nn.avg_pool2d(feature_map, size, strides=1, padding="SAME")


def strength(feature_map: tf.Tensor) -> tf.Tensor:
    """w(u) = ||u|| per cell: [B,h,w,D] -> [B,h,w]."""
    return tf.norm(feature_map, axis=-1)


def how_pool(strengths: tf.Tensor, descriptors: tf.Tensor) -> tf.Tensor:
    """Z_how = L2(sum over cells of w(u) o(ū)): strengths [B,h,w], descriptors
    [B,h,w,d] -> [B,d]."""
    pooled = tf.reduce_sum(descriptors * strengths[..., None], axis=[1, 2])
    return normalization.l2_normalize(pooled, axis=-1)


def LearnPcaWhitening(descriptors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA whitening of float [N, D] descriptors reduced to `dim`.

    Returns:
      (P float32 [dim, D], m float32 [D]) with o(x) = P (x - m): the rows of P
      are the `dim` leading eigenvectors of the covariance, each divided by
      the square root of its eigenvalue, so o(x) has identity covariance.
    """
    x = np.asarray(descriptors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"PCA whitening needs float [N >= 2, D] descriptors, got {x.shape}")
    if not 1 <= dim <= x.shape[1]:
        raise ValueError(f"Whitening dimension {dim} must be in [1, {x.shape[1]}]")
    mean = x.mean(axis=0)
    centred = x - mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / len(x))
    order = np.argsort(eigenvalues)[::-1][:dim]
    eigenvalues = np.maximum(eigenvalues[order], eigenvalues.max() * _MIN_EIGENVALUE_RATIO)
    # Each eigenvector's sign is fixed (largest component positive) so the
    # result does not depend on the eigen-solver.
    vectors = eigenvectors[:, order]
    vectors *= np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(dim)])
    projection = vectors.T / np.sqrt(eigenvalues)[:, None]
    return projection.astype(np.float32), mean.astype(np.float32)


def receptive_field(spec: resnet.BackboneSpec, num_stages: int, smoothing_size: int
                    ) -> tuple[int, int]:
    """(receptive field, stride) in input pixels of a cell of the backbone map
    after `num_stages` stages and the smoothing, for this package's ResNets
    (stem 7x7/2 + max-pool 3x3/2; a stage's stride on its first block)."""
    geometry = resnet.stage_geometry(spec, num_stages)
    return (geometry.receptive_field + (smoothing_size - 1) * geometry.stride,
            geometry.stride)


class HowNet(lazy_build.BuiltOnFirstCall, keras.Model):
    """call(images [B,H,W,3] float32 normalised as `normalize_images`, training)
    -> Z_how float32 [B, output_dim], L2-normalised.

    `local_features(images)` -> (strengths [B,h,w], descriptors [B,h,w,d]
    L2-normalised) for test-time extraction. The model carries its geometry:
    `stride`, `receptive_field` and `padding` (input pixels) place the cells
    of its feature map; `min_input_size` is the smallest image side it takes.

    Args:
      backbone: a ResNet name of `delf_tf.models.resnet.BACKBONE_SPECS`
        (HOW: resnet18, resnet50).
      drop_last_stage: leave out stage 5 (HOW's "¬R50").
      smoothing_size: M of the M x M average pooling (HOW: 3; 1 disables it).
      output_dim: d (HOW: 128).
    """

    def __init__(self, backbone: str = "resnet50", *, drop_last_stage: bool = False,
                 smoothing_size: int = 3, output_dim: int = 128, name: str = "HOW"):
        super().__init__(name=name)
        if smoothing_size < 1:
            raise ValueError(f"smoothing_size must be >= 1, got {smoothing_size}")
        self.model_config: dict[str, Any] = dict(
                backbone=backbone, drop_last_stage=drop_last_stage,
                smoothing_size=smoothing_size, output_dim=output_dim, name=name)
        self.backbone = resnet.ResNet(backbone, pooling=None, block3_strides=False,
                                      drop_last_stage=drop_last_stage, name="backbone")
        self.smoothing_size = smoothing_size
        self.output_dim = output_dim
        if not 1 <= output_dim <= self.backbone.output_channels:
            raise ValueError(f"output_dim {output_dim} must be in [1, "
                             f"{self.backbone.output_channels}] (the backbone's depth)")
        # o(u) = P (u - m): fixed during training (HOW initialises it by PCA
        # whitening and keeps it frozen).
        self.whitening = keras.layers.Conv2D(output_dim, 1, use_bias=True, trainable=False,
                                             name="whitening")
        self.min_input_size = self.backbone.min_input_size
        num_stages = 3 if drop_last_stage else 4
        self.receptive_field, self.stride = receptive_field(
                resnet.BACKBONE_SPECS[backbone], num_stages, smoothing_size)
        self.padding = (self.receptive_field - 1) // 2
        self.meta = {"architecture": backbone, "drop_last_stage": drop_last_stage,
                     "smoothing_size": smoothing_size, "outputdim": output_dim}

    @property
    def input_dim(self) -> int:
        """D, the backbone's depth (the whitening's input)."""
        return self.backbone.output_channels

    def feature_map(self, images, training=False):
        """u = f(I), the backbone's last map [B,h,w,D]."""
        return self.backbone(images, training=training)[0]

    def smoothed_features(self, images, training=False):
        """(w(u) [B,h,w], ū [B,h,w,D]): what the whitening is learned on."""
        features = self.feature_map(images, training=training)
        return strength(features), smooth(features, self.smoothing_size)

    def dense_outputs(self, images, training=False):
        """(w(u) [B,h,w], o(ū) [B,h,w,d])."""
        strengths, smoothed = self.smoothed_features(images, training=training)
        return strengths, self.whitening(smoothed)

    def call(self, images, training=False):
        return how_pool(*self.dense_outputs(images, training=training))

    def local_features(self, images, training=False):
        """(w(u) [B,h,w], L2(o(ū)) [B,h,w,d]): HOW's local features."""
        strengths, descriptors = self.dense_outputs(images, training=training)
        return strengths, normalization.l2_normalize(descriptors, axis=-1)

    def multi_scale_power(self) -> float:
        """Per-scale Z_how are averaged when described at several scales."""
        return 1.0

    def set_whitening(self, projection: np.ndarray, mean: np.ndarray) -> None:
        """Sets o(u) = P (u - m) from P float [d, D] and m float [D]."""
        projection = np.asarray(projection, np.float32)
        mean = np.asarray(mean, np.float32)
        if projection.shape != (self.output_dim, self.input_dim) or mean.shape != (
                self.input_dim,):
            raise ValueError(
                f"Whitening must be P [{self.output_dim}, {self.input_dim}] and m "
                f"[{self.input_dim}], got {projection.shape} and {mean.shape}")
        if not self.whitening.built:
            self.whitening.build([None, None, None, self.input_dim])
        self.whitening.kernel.assign(projection.T[None, None])
        self.whitening.bias.assign(-projection @ mean)


def save_how_model(model: HowNet, prefix: str) -> None:
    """tf.train.Checkpoint(model=model) at `prefix`, plus `<prefix>.json`
    describing it (so `load_how_model` can rebuild it)."""
    checkpoint.save_described(model, prefix)


def load_how_model(prefix: str) -> HowNet:
    """Rebuilds the HowNet described by `<prefix>.json` and restores its weights."""
    return checkpoint.load_described(HowNet, prefix)

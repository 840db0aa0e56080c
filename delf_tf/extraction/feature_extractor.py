"""Receptive fields, keypoint centres and descriptor post-processing (the
original's `feature_extractor` names). One implementation of each, shared by
the exported graph and the extractor.

`CalculateReceptiveBoxes` is TensorFlow (it runs inside the exported graph);
`CalculateKeypointCenters` works on tensors and arrays alike; the PCA / L2
post-processing runs on the extractor's NumPy outputs.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from delf_tf.extraction import postprocess

__all__ = [
    # The original's names (the compatibility surface).
    "CalculateReceptiveBoxes", "NormalizePixelValues", "CalculateKeypointCenters",
    "ApplyPcaAndWhitening", "PostProcessDescriptors", "DelfFeaturePostProcessing",
    # delf_tf's own API.
    "RECEPTIVE_FIELD", "RECEPTIVE_PADDING", "STRIDE_WITH_BLOCK3_STRIDES",
    "STRIDE_WITHOUT_BLOCK3_STRIDES", "feature_stride",
]

# Receptive field of a block3 cell of ResNet-50 (the original's constants), in input pixels.
RECEPTIVE_FIELD = 291
RECEPTIVE_PADDING = 145
STRIDE_WITH_BLOCK3_STRIDES = 32
STRIDE_WITHOUT_BLOCK3_STRIDES = 16


def feature_stride(block3_strides: bool) -> int:
    """Stride of the block3 feature map in input pixels."""
    return STRIDE_WITH_BLOCK3_STRIDES if block3_strides else STRIDE_WITHOUT_BLOCK3_STRIDES


def CalculateReceptiveBoxes(height, width, rf, stride, padding) -> tf.Tensor:
    """Receptive boxes of every cell of a height x width feature map.

    Returns:
      float32 [height * width, 4] as [ymin, xmin, ymax, xmax], rows outer:
      cell (i, j) -> [stride*i - padding, stride*j - padding,
                      stride*i - padding + rf - 1, stride*j - padding + rf - 1].
    """
    rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    corners = tf.cast(tf.reshape(tf.stack([rows, cols], axis=-1), [-1, 2]), tf.float32)
    top_left = corners * tf.cast(stride, tf.float32) - tf.cast(padding, tf.float32)
    bottom_right = top_left + tf.cast(rf, tf.float32) - 1.0
    return tf.concat([top_left, bottom_right], axis=1)


def NormalizePixelValues(image, pixel_value_offset: float = 128.0,
                         pixel_value_scale: float = 128.0) -> tf.Tensor:
    """(image - pixel_value_offset) / pixel_value_scale as float32 (the original's name;
    the defaults are the normalisation every delf_tf model uses)."""
    image = tf.cast(image, tf.float32)
    return (image - pixel_value_offset) / pixel_value_scale


def CalculateKeypointCenters(boxes):
    """Box centres: boxes [N, 4] (ymin, xmin, ymax, xmax) -> [N, 2] (y, x).

    Accepts a tensor, an array or nested lists; a tensor gives a tensor, anything
    else a float NumPy array.
    """
    if not isinstance(boxes, (tf.Tensor, np.ndarray)):
        boxes = np.asarray(boxes, dtype=np.float32)
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def ApplyPcaAndWhitening(data, pca_matrix, pca_mean, output_dim: int,
                         use_whitening: bool = False, pca_variances=None) -> np.ndarray:
    """(data - mean) @ pca_matrix[:output_dim].T, divided by
    sqrt(pca_variances[:output_dim]) with whitening.

    Args:
      data: float [N, D]; pca_matrix: [D', D] (rows = components); pca_mean: [D];
      pca_variances: [D'] (needed with whitening).
    Returns:
      float32 [N, output_dim].
    """
    data = np.asarray(data, dtype=np.float32)
    projection = np.asarray(pca_matrix, dtype=np.float32)[:output_dim]
    output = (data - np.asarray(pca_mean, dtype=np.float32)) @ projection.T
    if use_whitening:
        if pca_variances is None:
            raise ValueError("use_whitening=True needs pca_variances")
        output = output / np.sqrt(np.asarray(pca_variances, dtype=np.float32)[:output_dim])
    return output.astype(np.float32)


def _as_pca_parameters(pca_parameters: Any) -> postprocess.PcaParameters:
    if isinstance(pca_parameters, postprocess.PcaParameters):
        return pca_parameters
    if isinstance(pca_parameters, Mapping):
        # The original's dict layout, so ported code keeps working.
        return postprocess.PcaParameters(
                mean=pca_parameters["mean"], matrix=pca_parameters["matrix"],
                output_dim=int(pca_parameters["dim"]),
                use_whitening=bool(pca_parameters.get("use_whitening", False)),
                variances=pca_parameters.get("variances"))
    raise TypeError(f"pca_parameters must be PcaParameters or a dict, got {type(pca_parameters)}")


def PostProcessDescriptors(descriptors, use_pca: bool, pca_parameters=None) -> np.ndarray:
    """L2-normalises descriptors [N, D]; with use_pca, then PCA(-whitening) to
    [N, pca_dim] and L2 again. Returns float32."""
    descriptors = postprocess.l2_normalize(descriptors, axis=1)
    if use_pca:
        if pca_parameters is None:
            raise ValueError("use_pca=True needs pca_parameters")
        params = _as_pca_parameters(pca_parameters)
        descriptors = ApplyPcaAndWhitening(descriptors, params.matrix, params.mean,
                                           params.output_dim, params.use_whitening,
                                           params.variances)
        descriptors = postprocess.l2_normalize(descriptors, axis=1)
    return descriptors


def DelfFeaturePostProcessing(boxes, descriptors, use_pca: bool,
                              pca_parameters=None) -> tuple[np.ndarray, np.ndarray]:
    """Keypoint centres and post-processed descriptors of selected features.

    Args:
      boxes: [N, 4] receptive boxes (ymin, xmin, ymax, xmax); descriptors: [N, D].
    Returns:
      (locations float32 [N, 2] as (y, x), descriptors float32 [N, D or pca_dim]).
    """
    locations = CalculateKeypointCenters(np.asarray(boxes, dtype=np.float32))
    return locations, PostProcessDescriptors(descriptors, use_pca, pca_parameters)

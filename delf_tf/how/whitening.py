"""HOW's whitening initialisation: PCA whitening of single-scale local
descriptors ū of training images, set as the frozen o(u) = P (u - m)."""

import logging
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from delf_tf.how.model import HowNet, LearnPcaWhitening
from delf_tf.models.preprocessing import normalize_images

__all__ = [
    # The original's names (the compatibility surface).
    "StrongestSmoothedDescriptors", "InitializeWhitening",
]

logger = logging.getLogger(__name__)


def StrongestSmoothedDescriptors(model: HowNet, image: np.ndarray,
                                 num_features: int = 1000) -> np.ndarray:
    """ū of the `num_features` strongest cells (by ||u||) of uint8 [H, W, 3] at
    scale 1, float32 [n, D] (all cells if fewer)."""
    strengths, smoothed = model.smoothed_features(normalize_images(image)[None], training=False)
    strengths = tf.reshape(strengths, [-1])
    smoothed = tf.reshape(smoothed, [-1, smoothed.shape[-1]])
    keep = tf.math.top_k(strengths, k=tf.minimum(num_features, tf.size(strengths))).indices
    return tf.gather(smoothed, keep).numpy()


def InitializeWhitening(
    model: HowNet,
    images: Iterable[np.ndarray],
    num_features: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Learns P, m by PCA whitening of the strongest `num_features` smoothed
    descriptors of each image (uint8 [H, W, 3], already at the training size;
    HOW uses 5000 training images) and sets them in `model`. Returns (P, m)."""
    chunks = []
    for i, image in enumerate(images):
        chunks.append(StrongestSmoothedDescriptors(model, image, num_features))
        if progress is not None:
            progress(i + 1)
    if not chunks:
        raise ValueError("No images to learn the whitening from")
    descriptors = np.concatenate(chunks)
    if len(descriptors) <= model.output_dim:
        raise ValueError(f"{len(descriptors)} descriptors from {len(chunks)} images cannot "
                         f"give a {model.output_dim}-D whitening; use more images")
    projection, mean = LearnPcaWhitening(descriptors, model.output_dim)
    model.set_whitening(projection, mean)
    logger.info("Whitening %d -> %d learned on %d descriptors of %d images", model.input_dim,
                model.output_dim, len(descriptors), len(chunks))
    return projection, mean

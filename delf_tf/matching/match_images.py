"""Matches the local features of two images and draws the verified matches
(the original's `match_images` example)."""

import os

import numpy as np
from PIL import Image

from delf_tf import utils
from delf_tf.io import atomic
from delf_tf.matching import reranking, visualization
from delf_tf.matching.params import VerificationParams

# The original match_images example's thresholds.
DEFAULT_VERIFICATION = VerificationParams(
    descriptor_matching_threshold=0.8, ransac_residual_threshold=20.0, ransac_seed=0)
DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD = DEFAULT_VERIFICATION.descriptor_matching_threshold
DEFAULT_RANSAC_RESIDUAL_THRESHOLD = DEFAULT_VERIFICATION.ransac_residual_threshold


def match_images(
    image_1_path: str,
    image_2_path: str,
    features_1_path: str,
    features_2_path: str,
    output_image: str | None,
    params: VerificationParams = DEFAULT_VERIFICATION,
    title: str | None = None,
    method: str | None = None,
) -> reranking.VerificationResult:
    """Matches each image-2 descriptor to its nearest image-1 descriptor and
    fits an affine map from image-1 to image-2 locations with RANSAC.

    Features are DelfFeatures files with locations (y, x) in the pixels of the
    image files. If `output_image` is set, the two images side by side with a
    line per inlier are written there (format from the extension, atomically),
    captioned with `title` (default: the two file names) and '<method>: N inliers
    of M putative matches' (method default: the descriptor kind found in the files).

    Returns the VerificationResult; query ids refer to image 2, index ids to
    image 1.
    """
    if output_image:  # checked before any work
        image_format = Image.registered_extensions().get(os.path.splitext(output_image)[1].lower())
        if image_format is None:
            raise ValueError(f"unknown picture format for {output_image} (use .png or .jpg)")
    features_1 = reranking.read_local_features(features_1_path)
    features_2 = reranking.read_local_features(features_2_path)
    result = reranking.verify(features_2, features_1, params)
    if output_image:
        image_1 = np.asarray(utils.RgbLoader(image_1_path))
        image_2 = np.asarray(utils.RgbLoader(image_2_path))
        inliers = result.inliers
        if title is None:
            title = f"{os.path.basename(image_1_path)} vs {os.path.basename(image_2_path)}"
        if method is None:
            method = describe_features(features_1)
        picture = visualization.draw_matches(
            image_1, image_2, features_1.matching_locations[result.index_ids[inliers]],
            features_2.matching_locations[result.query_ids[inliers]],
            caption=visualization.match_caption(title, method, result.num_inliers,
                                                len(result.query_ids)))
        atomic.write_bytes_atomic(output_image, visualization.encode_image(picture, image_format))
    return result


def describe_features(features: reranking.LocalFeatures) -> str:
    """'local features, 128-D float' or 'binarized local features (DELG*), 128 bits'."""
    descriptors = features.matching_descriptors
    if descriptors.binary:
        return f"binarized local features (DELG*), {descriptors.dim} bits"
    return f"local features, {descriptors.dim}-D float"

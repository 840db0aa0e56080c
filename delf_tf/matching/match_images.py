"""Matches the local features of two images and draws the verified matches
(the original's `match_images` example)."""

import os

import numpy as np
from PIL import Image

from delf_tf import utils
from delf_tf.io import atomic, feature_io
from delf_tf.matching import reranking, visualization
from delf_tf.matching.params import VerificationParams

__all__ = [
    "DEFAULT_VERIFICATION", "DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD",
    "DEFAULT_RANSAC_RESIDUAL_THRESHOLD", "match_images", "draw_visual_words", "picture_format",
    "describe_features",
]

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
    image_format = picture_format(output_image) if output_image else None  # before any work
    features_1 = reranking.read_local_features(features_1_path)
    features_2 = reranking.read_local_features(features_2_path)
    _check_same_depth(features_1, features_1_path, features_2, features_2_path)
    result = reranking.verify(features_2, features_1, params)
    if output_image:
        image_1 = np.asarray(utils.RgbLoader(image_1_path))
        image_2 = np.asarray(utils.RgbLoader(image_2_path))
        inliers = result.inliers
        if title is None:
            title = _pair_title(image_1_path, image_2_path)
        if method is None:
            method = describe_features(features_1)
        picture = visualization.draw_matches(
            image_1, image_2, features_1.matching_locations[result.index_ids[inliers]],
            features_2.matching_locations[result.query_ids[inliers]],
            caption=visualization.match_caption(title, method, result.num_inliers,
                                                len(result.query_ids)))
        os.makedirs(os.path.dirname(os.path.abspath(output_image)), exist_ok=True)
        atomic.write_bytes_atomic(output_image, visualization.encode_image(picture, image_format))
    return result


def _check_same_depth(features_1, path_1: str, features_2, path_2: str) -> None:
    """Descriptors of two images can only be matched if they have the same length."""
    depth_1, depth_2 = features_1.descriptors.shape[1:], features_2.descriptors.shape[1:]
    if len(features_1.descriptors) and len(features_2.descriptors) and depth_1 != depth_2:
        raise ValueError(f"{path_1} holds descriptors of shape {depth_1} but {path_2} of "
                         f"shape {depth_2}: they come from different models or configs")


def draw_visual_words(
    image_1_path: str,
    image_2_path: str,
    features_1_path: str,
    features_2_path: str,
    codebook_path: str,
    output_image: str,
    method: str = "local features",
) -> int:
    """Draws two images with their local features coloured by visual word of the codebook
    (see visualization.draw_visual_words), captioned with the file names, `method` and the
    counts; writes the picture to `output_image` (format from the extension, atomically).

    Features are DelfFeatures files with float descriptors and locations (y, x) in the
    pixels of the image files; the codebook a DatumProto float [K, D].
    Returns the number of visual words in both images.
    """
    from delf_tf.aggregation import codebook as codebook_lib

    image_format = picture_format(output_image)
    codebook = codebook_lib.ReadCodebook(codebook_path)
    sides = []
    for image_path, features_path in ((image_1_path, features_1_path),
                                      (image_2_path, features_2_path)):
        features = feature_io.read_features(features_path)
        if len(features) and not np.issubdtype(features.descriptors.dtype, np.floating):
            raise ValueError(f"{features_path} holds binarized descriptors; visual words "
                             "need the float ones")
        words = visualization.assign_visual_words(features.descriptors, codebook)
        sides.append((np.asarray(utils.RgbLoader(image_path)), features.locations, words))
    (image_1, locations_1, words_1), (image_2, locations_2, words_2) = sides
    shared = set(words_1.tolist()) & set(words_2.tolist())
    caption = [_pair_title(image_1_path, image_2_path),
               f"{method}: {len(words_1)} and {len(words_2)} features, {len(shared)} of "
               f"{len(codebook)} visual words in both (coloured)"]
    picture = visualization.draw_visual_words(image_1, image_2, locations_1, locations_2,
                                              words_1, words_2, caption=caption)
    atomic.write_bytes_atomic(output_image, visualization.encode_image(picture, image_format))
    return len(shared)


def picture_format(output_image: str) -> str:
    """PIL's format name for the extension of `output_image`; ValueError if it has none."""
    image_format = Image.registered_extensions().get(os.path.splitext(output_image)[1].lower())
    if image_format is None:
        raise ValueError(f"unknown picture format for {output_image} (use .png or .jpg)")
    return image_format


def _pair_title(image_1_path: str, image_2_path: str) -> str:
    return f"{os.path.basename(image_1_path)} vs {os.path.basename(image_2_path)}"


def describe_features(features: reranking.LocalFeatures) -> str:
    """'local features, 128-D float' or 'binarized local features (DELG*), 128 bits'."""
    descriptors = features.matching_descriptors
    if descriptors.binary:
        return f"binarized local features (DELG*), {descriptors.dim} bits"
    return f"local features, {descriptors.dim}-D float"

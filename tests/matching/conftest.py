"""A real-photo matching scene: skimage's astronaut and affine-warped copies.

Keypoints are Harris corners of the photo; each keypoint's descriptor is the
normalised intensity patch around it, and in a warped copy the descriptor of
the corresponding point is sampled from the warped image's own pixels through
the known transform (an affine-covariant patch), so true correspondences match
by content. Outliers are features at random places of the warped image
(described by what is there) and false matches (a query descriptor copied to a
random place).
"""

from typing import NamedTuple

import numpy as np
import pytest
from scipy import ndimage
from skimage import color, data, feature, transform

_PATCH_OFFSETS = np.stack(np.meshgrid(np.arange(-7, 8, 2.0), np.arange(-7, 8, 2.0),
                                      indexing="ij"), axis=-1).reshape(-1, 2)


class WarpedView(NamedTuple):
    """locations [N, 2] (y, x) and descriptors [N, 64] of one image, the
    (y, x) affine [2, 3] mapping its locations back to the query's, and which
    rows are true correspondences (query keypoint id, or -1)."""
    locations: np.ndarray
    descriptors: np.ndarray
    to_query_yx: np.ndarray
    query_ids: np.ndarray


def _describe(gray: np.ndarray, points_yx: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Samples a 8x8 patch around each point (in query frame), mapped through
    the (y, x) affine `mapping` [2, 3] into `gray`."""
    grid = points_yx[:, None, :] + _PATCH_OFFSETS[None]
    mapped = grid @ mapping[:, :2].T + mapping[:, 2]
    values = ndimage.map_coordinates(gray, mapped.reshape(-1, 2).T, order=1, mode="nearest")
    values = values.reshape(len(points_yx), -1)
    values -= values.mean(axis=1, keepdims=True)
    return values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12)


def _yx_affine(tform: transform.AffineTransform) -> np.ndarray:
    """The (y, x) form [2, 3] of an (x, y) skimage transform."""
    m = tform.params
    return np.array([[m[1, 1], m[1, 0], m[1, 2]], [m[0, 1], m[0, 0], m[0, 2]]])


class Scene:
    def __init__(self, num_keypoints: int = 150):
        rgb = data.astronaut()
        self.image = rgb
        self.gray = color.rgb2gray(rgb)
        corners = feature.corner_peaks(
            feature.corner_harris(self.gray), min_distance=6, num_peaks=num_keypoints,
            exclude_border=20)
        self.locations = corners.astype(np.float64)
        self.descriptors = _describe(self.gray, self.locations, np.array([[1.0, 0, 0], [0, 1, 0]]))

    def warped_view(self, seed: int, num_true: int, num_random: int, num_false: int,
                    rotation: float = 0.15, scale: float = 0.85,
                    translation=(40.0, -25.0)) -> tuple[np.ndarray, WarpedView]:
        """A warped copy of the photo and features with `num_true` true
        correspondences, `num_random` features at random places and `num_false`
        false matches."""
        rng = np.random.default_rng(seed)
        tform = transform.AffineTransform(scale=scale, rotation=rotation,
                                          translation=translation)
        warped_rgb = (transform.warp(self.image, tform.inverse, preserve_range=True)
                      .astype(np.uint8))
        warped_gray = transform.warp(self.gray, tform.inverse)
        query_to_view = _yx_affine(tform)
        view_to_query = _yx_affine(transform.AffineTransform(matrix=np.linalg.inv(tform.params)))
        height, width = self.gray.shape

        mapped = self.locations @ query_to_view[:, :2].T + query_to_view[:, 2]
        visible = np.flatnonzero(np.all((mapped > 12) & (mapped < [height - 12, width - 12]),
                                        axis=1))
        true_ids = rng.choice(visible, size=min(num_true, len(visible)), replace=False)
        true_descriptors = _describe(warped_gray, self.locations[true_ids], query_to_view)

        random_locations = rng.uniform(12, [height - 12, width - 12], size=(num_random, 2))
        identity = np.array([[1.0, 0, 0], [0, 1, 0]])
        random_descriptors = _describe(warped_gray, random_locations, identity)
        false_locations = rng.uniform(12, [height - 12, width - 12], size=(num_false, 2))
        false_descriptors = self.descriptors[rng.choice(len(self.locations), num_false)]

        order = rng.permutation(len(true_ids) + num_random + num_false)
        view = WarpedView(
            np.concatenate([mapped[true_ids], random_locations, false_locations])[order],
            np.concatenate([true_descriptors, random_descriptors, false_descriptors])[order],
            view_to_query,
            np.concatenate([true_ids, -np.ones(num_random + num_false, np.int64)])[order])
        return warped_rgb, view


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene()

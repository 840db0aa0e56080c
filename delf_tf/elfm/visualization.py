"""The ELFM "local match map" (the paper's Fig. 2) next to the L2-norm map.

For a query/target pair: each selected local feature of either image gets the share of
S(q, c) its cluster contributes, spread over its cell (stride / scale pixels around the
receptive-box centre) and summed over scales. Query cluster i contributes
max_j M[i, j] / k_q; target cluster j contributes the sum of M[i, j] / k_q over the query
clusters i whose best match it is. The L2-norm map sums the norms of the same features.
"""

import dataclasses

import numpy as np

from delf_tf.elfm import functional as F

__all__ = ["cluster_contributions", "splat", "colourize", "match_map_picture", "save_match_map",
           "MatchMapFiles", "DrawMatchMap"]


def cluster_contributions(query_codes: np.ndarray, target_codes: np.ndarray,
                          dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(query float64 [k_q], target float64 [k_c]) shares of S(q, c); each sums to S."""
    matches = F.match_matrix(query_codes, target_codes, dim)
    query_share = np.zeros(len(query_codes))
    target_share = np.zeros(len(target_codes))
    if matches.size == 0:
        return query_share, target_share
    best = matches.argmax(axis=1)
    query_share = matches.max(axis=1) / len(query_codes)
    np.add.at(target_share, best, query_share)
    return query_share, target_share


def splat(shape: tuple[int, int], boxes: np.ndarray, scales: np.ndarray, values: np.ndarray,
          stride: int) -> np.ndarray:
    """float64 [H, W]: each value added over a (stride * scales[n])-wide square at the centre
    of boxes[n] (ymin, xmin, ymax, xmax); scales are the pyramid's 1 / scale."""
    heat = np.zeros(shape, np.float64)
    for box, scale, value in zip(boxes, scales, values):
        cy, cx = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
        half = stride * float(scale) / 2.0
        y0, y1 = int(max(0, np.floor(cy - half))), int(min(shape[0], np.ceil(cy + half)))
        x0, x1 = int(max(0, np.floor(cx - half))), int(min(shape[1], np.ceil(cx + half)))
        heat[y0:y1, x0:x1] += value
    return heat


def colourize(heat: np.ndarray) -> np.ndarray:
    """float [H, W] -> uint8 [H, W, 3] jet colours, normalised to the map's range."""
    import cv2

    span = max(float(np.ptp(heat)), 1e-12)
    scaled = ((heat - heat.min()) / span * 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_JET)[..., ::-1]


def _row(image, match, norms):
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    overlay = lambda heat: (0.45 * image + 0.55 * colourize(heat)).astype(np.uint8)  # noqa: E731
    return np.concatenate([image, gap, overlay(match), gap, overlay(norms)], axis=1)


def match_map_picture(extractor, query_image: np.ndarray, target_image: np.ndarray,
                      stride: int = 32) -> tuple[np.ndarray, float]:
    """Rows query / target of [image | local match map | L2-norm map] -> (uint8 picture,
    S(q, c)). `extractor` is an ElfmExtractor; images uint8 [H, W, 3] (resized as it does)."""
    sides = []
    for image in (query_image, target_image):
        result, outputs, resized = extractor(image)
        sides.append((result, outputs, resized))
    (query, q_out, q_img), (target, t_out, t_img) = sides
    query_share, target_share = cluster_contributions(query.codes, target.codes, query.dim)
    rows = []
    for result, outputs, image, share in ((query, q_out, q_img, query_share),
                                          (target, t_out, t_img, target_share)):
        selected = result.selected
        boxes, scales = outputs["boxes"][selected], outputs["scales"][selected]
        per_feature = share[result.labels] if len(share) else np.zeros(len(selected))
        shape = image.shape[:2]
        match = splat(shape, boxes, scales, per_feature, stride)
        norms = splat(shape, boxes, scales, outputs["scores"][selected, 0], stride)
        rows.append(_row(np.asarray(image, np.uint8), match, norms))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    score = F.elfm_similarity(query.codes, target.codes, query.dim)
    return np.concatenate(rows, axis=0), score


def save_match_map(extractor, query_image, target_image, output_path: str) -> float:
    """Writes the match-map PNG atomically; returns S(q, c)."""
    from delf_tf.io import atomic
    from delf_tf.matching import visualization

    picture, score = match_map_picture(extractor, query_image, target_image)
    atomic.write_bytes_atomic(output_path, visualization.encode_image(picture, "PNG"))
    return score


@dataclasses.dataclass(frozen=True)
class MatchMapFiles:
    """The image pair DrawMatchMap reads and the picture it writes (the flags of
    tools/draw_elfm_match_map.py besides the ELFM model's).

    Attributes:
      query_image: Query image path.
      target_image: Target (database) image path.
      output_path: PNG file the picture is written to.
    """
    query_image: str = ""
    target_image: str = ""
    output_path: str = "/tmp/elfm_match_map.png"


def DrawMatchMap(extractor, files: MatchMapFiles) -> float:
    """save_match_map of the two image files (read as RGB); returns S(q, c)."""
    from delf_tf import utils

    query = np.asarray(utils.RgbLoader(files.query_image))
    target = np.asarray(utils.RgbLoader(files.target_image))
    return save_match_map(extractor, query, target, files.output_path)

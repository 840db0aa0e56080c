"""Side-by-side pictures of feature matches (match_images, MatchFeatures)."""

import io

import numpy as np
from PIL import Image, ImageDraw

_LINE_COLOR = (0, 96, 255)
_POINT_COLOR = (255, 200, 0)


def draw_matches(
    image_1: np.ndarray,
    image_2: np.ndarray,
    locations_1: np.ndarray,
    locations_2: np.ndarray,
    line_width: int = 1,
) -> np.ndarray:
    """Draws image_1 and image_2 side by side with a line per match.

    Args:
      image_1, image_2: uint8 [H, W, 3] (grayscale [H, W] is accepted).
      locations_1, locations_2: [M, 2] matched points as (y, x) in pixels of
        the respective image; row i of both is one match.

    Returns:
      uint8 [max(H1, H2), W1 + W2, 3]; the shorter image is padded with black.
    """
    image_1, image_2 = _as_rgb(image_1), _as_rgb(image_2)
    locations_1 = np.asarray(locations_1, dtype=np.float64).reshape(-1, 2)
    locations_2 = np.asarray(locations_2, dtype=np.float64).reshape(-1, 2)
    if len(locations_1) != len(locations_2):
        raise ValueError(f"{len(locations_1)} vs {len(locations_2)} matched locations")
    height = max(image_1.shape[0], image_2.shape[0])
    offset = image_1.shape[1]
    canvas = np.zeros([height, offset + image_2.shape[1], 3], dtype=np.uint8)
    canvas[:image_1.shape[0], :offset] = image_1
    canvas[:image_2.shape[0], offset:] = image_2

    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    radius = max(2, line_width + 1)
    for (y1, x1), (y2, x2) in zip(locations_1, locations_2):
        draw.line([(x1, y1), (x2 + offset, y2)], fill=_LINE_COLOR, width=line_width)
        for x, y in ((x1, y1), (x2 + offset, y2)):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                         outline=_POINT_COLOR)
    return np.asarray(picture)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image[..., :3]


def encode_image(image: np.ndarray, image_format: str = "PNG") -> bytes:
    """Encodes uint8 [H, W, 3] as image file bytes (PNG, JPEG, ...)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format=image_format)
    return buffer.getvalue()

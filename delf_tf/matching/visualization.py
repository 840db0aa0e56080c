"""Pictures: side-by-side feature matches (match_images, MatchFeatures) and attention maps,
each with a caption saying what is shown (method, inlier count, threshold)."""

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from delf_tf.aggregation import functional

__all__ = [
    "draw_matches", "match_caption", "add_caption", "draw_attention", "encode_image",
    "assign_visual_words", "draw_visual_words",
]

_LINE_COLOR = (0, 96, 255)
_POINT_COLOR = (255, 200, 0)


def draw_matches(
    image_1: np.ndarray,
    image_2: np.ndarray,
    locations_1: np.ndarray,
    locations_2: np.ndarray,
    line_width: int = 1,
    caption: str | Sequence[str] | None = None,
) -> np.ndarray:
    """Draws image_1 and image_2 side by side with a line per match.

    Args:
      image_1, image_2: uint8 [H, W, 3] (grayscale [H, W] is accepted).
      locations_1, locations_2: [M, 2] matched points as (y, x) in pixels of
        the respective image; row i of both is one match.
      caption: text line(s) drawn in a white band above the pictures (e.g. the
        image names, the method and the inlier count).

    Returns:
      uint8 [max(H1, H2) (+ caption band), W1 + W2, 3]; the shorter image is
      padded with black.
    """
    image_1, image_2 = _as_rgb(image_1), _as_rgb(image_2)
    locations_1 = np.asarray(locations_1, dtype=np.float64).reshape(-1, 2)
    locations_2 = np.asarray(locations_2, dtype=np.float64).reshape(-1, 2)
    if len(locations_1) != len(locations_2):
        raise ValueError(f"{len(locations_1)} vs {len(locations_2)} matched locations")
    picture, offset = _side_by_side(image_1, image_2)
    draw = ImageDraw.Draw(picture)
    radius = max(2, line_width + 1)
    for (y1, x1), (y2, x2) in zip(locations_1, locations_2):
        draw.line([(x1, y1), (x2 + offset, y2)], fill=_LINE_COLOR, width=line_width)
        for x, y in ((x1, y1), (x2 + offset, y2)):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                         outline=_POINT_COLOR)
    return add_caption(np.asarray(picture), caption)


def match_caption(title: str, method: str, num_inliers: int, num_putative: int) -> list[str]:
    """The caption of a match picture: title, then '<method>: N inliers of M putative matches'."""
    return [title, f"{method}: {num_inliers} inliers of {num_putative} putative matches"]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _font_size(width: int) -> int:
    return int(np.clip(width // 45, 11, 22))


def add_caption(picture: np.ndarray, caption: str | Sequence[str] | None) -> np.ndarray:
    """Adds a white band with the caption's lines (black text) above `picture`."""
    if not caption:
        return np.asarray(picture)
    lines = [caption] if isinstance(caption, str) else list(caption)
    picture = _as_rgb(picture)
    font = _font(_font_size(picture.shape[1]))
    lines = [wrapped for line in lines
             for wrapped in _wrap(line, font, picture.shape[1] - 8)]
    line_height = int(font.getbbox("Ag")[3]) + 4
    band = Image.new("RGB", (picture.shape[1], line_height * len(lines) + 6), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * line_height), line, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(band), picture], axis=0)


def _wrap(line: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Splits `line` at spaces into pieces that fit `width` pixels (a long word stays whole)."""
    pieces, current = [], ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > width:
            pieces.append(current)
            current = word
        else:
            current = candidate
    return [*pieces, current]


def draw_attention(
    image: np.ndarray,
    attention: np.ndarray,
    threshold: float | None = None,
    caption: str | Sequence[str] | None = None,
) -> np.ndarray:
    """Image | attention map | overlay, with a colour bar of the attention scores.

    Args:
      image: uint8 [H, W, 3].
      attention: float [h, w] attention scores (e.g. the model's attention at one
        scale), stretched over the image with nearest-neighbour sampling.
      threshold: the DelfConfig's score_threshold: marked on the colour bar; in the
        overlay, places scoring below it (no feature is kept there) are dimmed.
      caption: text line(s) above the picture.

    Returns:
      uint8 [H (+ caption band), 3 W + colour bar, 3].
    """
    import cv2  # pylint: disable=g-import-not-at-top

    pixels = _as_rgb(image)
    height, width = pixels.shape[:2]
    attention = np.asarray(attention, dtype=np.float64)
    if attention.ndim != 2 or not attention.size:
        raise ValueError(f"attention must be [h, w], got shape {attention.shape}")
    low, high = float(attention.min()), float(attention.max())
    if threshold is not None:
        low, high = min(low, threshold), max(high, threshold)
    span = max(high - low, 1e-12)
    grid = cv2.resize(attention, (width, height), interpolation=cv2.INTER_NEAREST)
    colours = _colour_map((grid - low) / span)
    if threshold is not None:
        keep = (grid >= threshold)[..., None]
        overlay = np.where(keep, 0.5 * pixels + 0.5 * colours, 0.3 * pixels).astype(np.uint8)
    else:
        overlay = (0.5 * pixels + 0.5 * colours).astype(np.uint8)
    gap = np.full((height, 6, 3), 255, np.uint8)
    bar = _colour_bar(height, low, high, threshold)
    picture = np.concatenate([pixels, gap, colours, gap, overlay, gap, bar], axis=1)
    return add_caption(picture, caption)


def _colour_map(values: np.ndarray) -> np.ndarray:
    """float [..] in [0, 1] -> uint8 [.., 3] RGB (OpenCV's perceptually uniform viridis)."""
    import cv2  # pylint: disable=g-import-not-at-top

    levels = (np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS)[..., ::-1]


def _colour_bar(height: int, low: float, high: float, threshold: float | None) -> np.ndarray:
    """A vertical colour bar (high at the top) with its max/min and the threshold labelled."""
    font = _font(max(10, min(16, height // 12)))
    bar_width, label_width = 14, 90
    canvas = Image.new("RGB", (bar_width + label_width, height), (255, 255, 255))
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(bar_width, axis=1)
    canvas.paste(Image.fromarray(_colour_map(ramp)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    text_height = int(font.getbbox("0")[3])
    draw.text((bar_width + 3, 0), f"{high:.4g}", fill=(0, 0, 0), font=font)
    draw.text((bar_width + 3, height - text_height - 2), f"{low:.4g}", fill=(0, 0, 0), font=font)
    if threshold is not None:
        y = int(round((high - threshold) / max(high - low, 1e-12) * (height - 1)))
        draw.line([(0, y), (bar_width + 2, y)], fill=(255, 0, 0), width=2)
        label_y = int(np.clip(y - text_height // 2, text_height + 2, height - 2 * text_height - 4))
        draw.text((bar_width + 3, label_y), f"thr {threshold:.4g}", fill=(200, 0, 0), font=font)
    return np.asarray(canvas)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image[..., :3]


def _side_by_side(image_1: np.ndarray, image_2: np.ndarray) -> tuple[Image.Image, int]:
    """uint8 [H, W, 3] images -> (picture [max(H1, H2), W1 + W2] with image_2 starting at x =
    W1, the shorter one padded with black; W1)."""
    height = max(image_1.shape[0], image_2.shape[0])
    offset = image_1.shape[1]
    canvas = np.zeros([height, offset + image_2.shape[1], 3], dtype=np.uint8)
    canvas[:image_1.shape[0], :offset] = image_1
    canvas[:image_2.shape[0], offset:] = image_2
    return Image.fromarray(canvas), offset


def encode_image(image: np.ndarray, image_format: str = "PNG") -> bytes:
    """Encodes uint8 [H, W, 3] as image file bytes (PNG, JPEG, ...)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format=image_format)
    return buffer.getvalue()


def assign_visual_words(descriptors: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Nearest codebook word (L2) of each descriptor: int64 [N] for float [N, D], [K, D]."""
    descriptors = np.asarray(descriptors, dtype=np.float32).reshape(len(descriptors), -1)
    codebook = np.asarray(codebook, dtype=np.float32)
    if descriptors.shape[1] != codebook.shape[1]:
        raise ValueError(f"{descriptors.shape[1]}-D descriptors but a {codebook.shape[1]}-D "
                         "codebook")
    return functional.assign(descriptors, codebook)[:, 0]


def _word_colour(word: int) -> tuple[int, int, int]:
    """A bright colour per visual word (the same word always gets the same colour)."""
    hue = (int(word) * 0.618033988749895) % 1.0
    sector, fraction = int(hue * 6), (hue * 6) % 1.0
    rising, falling = int(255 * fraction), int(255 * (1 - fraction))
    return [(255, rising, 0), (falling, 255, 0), (0, 255, rising), (0, falling, 255),
            (rising, 0, 255), (255, 0, falling)][sector % 6]


def draw_visual_words(
    image_1: np.ndarray,
    image_2: np.ndarray,
    locations_1: np.ndarray,
    locations_2: np.ndarray,
    words_1: np.ndarray,
    words_2: np.ndarray,
    caption: str | Sequence[str] | None = None,
) -> np.ndarray:
    """Two images side by side with their local features coloured by visual word.

    Features whose word occurs in both images (the words that make an ASMK match) are drawn
    as filled discs in the word's colour, the others as small grey rings.

    Args:
      image_1, image_2: uint8 [H, W, 3].
      locations_1, locations_2: [N, 2] feature locations (y, x) in pixels of each image.
      words_1, words_2: int [N] visual word of each feature.
      caption: text line(s) above the picture.
    """
    image_1, image_2 = _as_rgb(image_1), _as_rgb(image_2)
    words_1 = np.asarray(words_1, np.int64).reshape(-1)
    words_2 = np.asarray(words_2, np.int64).reshape(-1)
    shared = set(words_1.tolist()) & set(words_2.tolist())
    picture, offset = _side_by_side(image_1, image_2)
    draw = ImageDraw.Draw(picture)
    radius = max(3, min(picture.height, picture.width) // 80)
    for locations, words, dx in ((locations_1, words_1, 0), (locations_2, words_2, offset)):
        locations = np.asarray(locations, np.float64).reshape(-1, 2)
        if len(locations) != len(words):
            raise ValueError(f"{len(locations)} locations but {len(words)} visual words")
        order = sorted(range(len(words)), key=lambda i: words[i] in shared)  # shared on top
        for i in order:
            y, x = locations[i]
            x += dx
            if words[i] in shared:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                             fill=_word_colour(words[i]), outline=(0, 0, 0))
            else:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=(160, 160, 160))
    return add_caption(np.asarray(picture), caption)

"""Image loading and the resize rule shared by extraction and evaluation
(the original's `utils`: `RgbLoader`, `ResizeImage`)."""

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from delf_tf.protos import delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "OpenImage", "RgbLoader", "ResizeImage",
]

_HIGH_BIT_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def OpenImage(source, name: str) -> Image.Image:
    """Image.open with the decompression-bomb limit as an error, checked from the
    header before any pixel is decoded.

    `source` is a path or a binary file object; `name` is used in messages. An
    image of more than PIL.Image.MAX_IMAGE_PIXELS pixels (89.5 million unless
    changed) raises ValueError: a small file claiming a huge size would otherwise
    allocate gigabytes when decoded.
    """
    try:
        with warnings.catch_warnings():
            # Checked below, as an error rather than PIL's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
    except Image.DecompressionBombError as e:
        raise ValueError(f"Refusing to decode {name}: {e}") from e
    limit = Image.MAX_IMAGE_PIXELS
    width, height = img.size
    if limit is not None and width * height > limit:
        img.close()
        raise ValueError(
                f"Refusing to decode {name}: {width}x{height} = {width * height} pixels is "
                f"more than the limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS; a possible "
                "decompression bomb)")
    return img


def RgbLoader(path: str) -> Image.Image:
    """Loads any image file (L, LA, RGBA, CMYK, P, 16-bit, ...) as an RGB PIL image.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: `path` is not a readable image, or has more pixels than
        PIL.Image.MAX_IMAGE_PIXELS (the message names the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such image file: {path}")
    try:
        with OpenImage(path, path) as img:
            img.load()
            if img.mode in _HIGH_BIT_DEPTH_MODES:
                # PIL clips 16-bit/float values at 255 when converting to RGB;
                # rescale the actual range to 8 bits instead.
                values = np.asarray(img, dtype=np.float64)
                peak = values.max() if values.size else 0.0
                scale = 255.0 / (65535.0 if peak > 255 else 255.0)
                img = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"Cannot read image {path}: {e}") from e


def ResizeImage(
    image: np.ndarray,
    config: delf_config_pb2.DelfConfig,
    resize_factor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Resizes an image following the DelfConfig size rules (the original's ResizeImage).

    Args:
      image: uint8 [H, W, 3].
      config: DelfConfig; uses max_image_size, min_image_size, use_square_images.
      resize_factor: multiplies both size limits (used for cropped queries).

    Returns:
      (resized uint8 [H', W', 3], scale_factors float32 [2] = [H'/H, W'/W]).
    """
    if resize_factor < 0:
        raise ValueError(f"negative resize_factor is not allowed: {resize_factor}")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must have 3 dimensions (H, W, 3), got shape {image.shape}")
    height, width, channels = image.shape
    if channels != 3:
        raise ValueError(f"image must have 3 channels, got {channels}")

    max_size = resize_factor * config.max_image_size
    min_size = resize_factor * config.min_image_size
    largest_side = max(height, width)
    if max_size >= 0 and largest_side > max_size:
        scale = max_size / largest_side
    elif min_size >= 0 and largest_side < min_size:
        scale = min_size / largest_side
    elif config.use_square_images and height != width:
        scale = 1.0
    else:
        return image, np.array([1.0, 1.0], dtype=np.float32)

    if config.use_square_images:
        new_height = new_width = int(round(largest_side * scale))
    else:
        new_height, new_width = int(round(height * scale)), int(round(width * scale))
    resized = np.asarray(
        Image.fromarray(image).resize((new_width, new_height), resample=Image.BILINEAR))
    scale_factors = np.array([new_height / height, new_width / width], dtype=np.float32)
    return resized, scale_factors

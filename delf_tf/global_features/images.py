"""Images from a list of files as a tf.data pipeline: decode, optional box crop, max-side resize.

As the original's ImagesFromList: an image larger than `image_size` on its longer side is
shrunk (aspect ratio kept, antialiased) so that side is `image_size`; smaller images are left
as they are. Files may have any extension or none (SfM images have none): the format is
detected from the bytes (JPEG, PNG, GIF, BMP).
"""

import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    # The original's names (the compatibility surface).
    "ImagesFromList",
    # delf_tf's own API.
    "DEFAULT_IMAGE_SIZE", "NO_BOX", "BOX_OUTSIDE_TAG", "box_outside_error", "boxes_array",
    "load_image", "resize_max_side",
]

DEFAULT_IMAGE_SIZE = 1024
NO_BOX = (-1.0, -1.0, -1.0, -1.0)
# Tags the error of a box that lies wholly outside its image; `box_outside_error` turns
# TensorFlow's message (tag, path, box, width, height) into a ValueError.
BOX_OUTSIDE_TAG = "bounding box outside its image"
_BOX_OUTSIDE = re.compile(re.escape(BOX_OUTSIDE_TAG)
                          + r"\] \[(.*?)\] \[([^\]]*)\] \[(\d+)\] \[(\d+)\]")


def box_outside_error(error: tf.errors.InvalidArgumentError) -> ValueError | None:
    """ValueError naming image, box and size if `error` is the crop's box check, else None."""
    match = _BOX_OUTSIDE.search(str(error))
    if not match:
        return None
    path, box, width, height = match.groups()
    return ValueError(f"{path}: bounding box [{', '.join(box.split())}] lies outside the "
                      f"{width}x{height} image (nothing is left after clipping it to the image)")


def boxes_array(bbxs: Sequence | None, count: int) -> np.ndarray:
    """None entries -> NO_BOX; returns float32 [count, 4] as [x1, y1, x2, y2]."""
    if bbxs is None:
        return np.tile(np.float32(NO_BOX), (count, 1))
    if len(bbxs) != count:
        raise ValueError(f"{len(bbxs)} bounding boxes for {count} images")
    return np.asarray([NO_BOX if b is None else [float(v) for v in b] for b in bbxs],
                      np.float32).reshape(count, 4)


def load_image(path, box, image_size: int):
    """Graph function: file path (string []), box float32 [4] ([x1, y1, x2, y2] in pixels, or
    all -1 for none) -> uint8 [H, W, 3] with max(H, W) <= image_size."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.ensure_shape(image, [None, None, 3])

    def crop():
        # The box is clipped to the image (never padded); one wholly outside is an error.
        shape = tf.shape(image)
        left, top = (tf.cast(tf.floor(box[0]), tf.int32), tf.cast(tf.floor(box[1]), tf.int32))
        right = tf.cast(tf.math.ceil(box[2]), tf.int32)
        bottom = tf.cast(tf.math.ceil(box[3]), tf.int32)
        overlaps = tf.reduce_all(tf.stack([left < shape[1], top < shape[0], right > 0,
                                           bottom > 0, right > left, bottom > top]))
        check = tf.debugging.Assert(overlaps, [BOX_OUTSIDE_TAG, path, box, shape[1], shape[0]],
                                    summarize=4)
        with tf.control_dependencies([check]):
            x1 = tf.clip_by_value(left, 0, shape[1] - 1)
            y1 = tf.clip_by_value(top, 0, shape[0] - 1)
            x2 = tf.clip_by_value(right, x1 + 1, shape[1])
            y2 = tf.clip_by_value(bottom, y1 + 1, shape[0])
            return image[y1:y2, x1:x2]

    image = tf.cond(box[0] >= 0, crop, lambda: image)
    return resize_max_side(image, image_size)


def resize_max_side(image, image_size: int):
    """uint8 [H, W, 3] -> uint8 with its longer side at most image_size (never enlarged)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.minimum(1.0, float(image_size) / tf.reduce_max(shape))
    size = tf.maximum(tf.cast(tf.round(shape * factor), tf.int32), 1)
    resized = tf.image.resize(image, size, method="bilinear", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.cond(factor < 1.0, lambda: resized, lambda: image)


def ImagesFromList(paths: Sequence[str], image_size: int = DEFAULT_IMAGE_SIZE,
                   bbxs: Sequence | None = None,
                   num_parallel_calls: int = tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Dataset of uint8 [H, W, 3] images, in list order, decoded in parallel.

    bbxs: None or one entry per image, None or [x1, y1, x2, y2] (crop before resizing).
    """
    boxes = boxes_array(bbxs, len(paths))
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), boxes))
    return dataset.map(lambda p, b: load_image(p, b, image_size),
                       num_parallel_calls=num_parallel_calls,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)

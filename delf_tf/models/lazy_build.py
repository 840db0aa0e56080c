"""Models whose sub-layers build on their first real call."""

import tensorflow as tf

__all__ = ["BUILD_IMAGE_SIZE", "BuiltOnFirstCall"]

BUILD_IMAGE_SIZE = 64


class BuiltOnFirstCall:
    """Mixin for a keras.Model: no symbolic trace of `call` at build time, and
    `build_for_input` to create every variable before restoring or distributing."""

    def build(self, input_shape):
        # Sub-layers build on the first real call (no symbolic trace of `call`).
        self.built = True

    def build_for_input(self, image_size: int = BUILD_IMAGE_SIZE) -> None:
        """Creates every variable with one small forward pass on zeros [1,s,s,3] float32."""
        self(tf.zeros([1, image_size, image_size, 3], tf.float32), training=False)

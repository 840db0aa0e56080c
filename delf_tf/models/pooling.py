"""Global pooling of feature maps: MAC, SPoC and GeM (the maths once, as functions; thin layers).

Each function maps a feature map [B,H,W,C] to a descriptor [B,C] by reducing over `axis`
(default [1, 2], i.e. H and W). The public names are the original's (`mac`, `spoc`, `gem`,
`MAC`, `SPoC`, `GeM`).
"""

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

__all__ = [
    "GEM_EPSILON", "mac", "spoc", "gem", "MAC", "SPoC", "GeM", "GeMPooling2D",
    "POOLING_LAYERS", "make_pooling",
]

GEM_EPSILON = 1e-6
_SPATIAL = (1, 2)


def mac(x, axis: Sequence[int] | None = None):
    """Maximum activations of convolutions: max over H, W. [B,H,W,C] -> [B,C]."""
    return tf.reduce_max(x, axis=list(axis or _SPATIAL))


def spoc(x, axis: Sequence[int] | None = None):
    """Sum-pooled convolutions (as the original: the mean over H, W). [B,H,W,C] -> [B,C]."""
    return tf.reduce_mean(x, axis=list(axis or _SPATIAL))


def gem(x, axis: Sequence[int] | None = None, power=3.0, eps: float = GEM_EPSILON):
    """Generalized mean over H, W: mean(max(x, eps)^p)^(1/p). [B,H,W,C] -> [B,C].

    The argument order is the original's `gem(x, axis=None, power=3., eps=1e-6)`, so
    positional calls written for it keep their meaning; values below `eps` are clamped to it.

    `power` is a Python float or a float tensor broadcastable to the pooled shape (a learnable
    p of shape [1]); p = 1 is SPoC on positive maps and p -> inf tends to MAC.
    """
    x = tf.maximum(x, tf.cast(eps, x.dtype))
    power = tf.cast(power, x.dtype)
    pooled = tf.reduce_mean(tf.pow(x, power), axis=list(axis or _SPATIAL))
    return tf.pow(pooled, 1.0 / power)


class _AxisPooling(keras.layers.Layer):
    """Thin layer over the pooling function `pool` (reducing over `axis`, default H and W)."""

    pool: Callable[..., tf.Tensor]

    def __init__(self, axis: Sequence[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return type(self).pool(x, axis=self.axis)


class MAC(_AxisPooling):
    """Thin layer over `mac` (reducing over `axis`, default H and W)."""

    pool = staticmethod(mac)


class SPoC(_AxisPooling):
    """Thin layer over `spoc` (reducing over `axis`, default H and W)."""

    pool = staticmethod(spoc)


class GeM(keras.layers.Layer):
    """Thin layer over `gem`; `trainable_power=True` learns p (a weight "p" of shape [1]).

    Pools in float32: x^p overflows float16 for activations above ~40 (p=3).
    """

    def __init__(self, power: float = 3.0, eps: float = GEM_EPSILON,
                 trainable_power: bool = False, axis: Sequence[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.power = float(power)
        self.eps = eps
        self.trainable_power = trainable_power
        self.p = None
        if trainable_power:
            self.p = self.add_weight(name="p", shape=(1,),
                                     initializer=keras.initializers.Constant(self.power),
                                     dtype="float32", trainable=True)

    def current_power(self) -> float:
        """p as a Python float (the learnt value when trainable)."""
        return float(self.p.numpy()[0]) if self.p is not None else self.power

    def call(self, x):
        power = self.p if self.p is not None else self.power
        return gem(tf.cast(x, tf.float32), axis=self.axis, power=power, eps=self.eps)

    def get_config(self):
        return {**super().get_config(), "power": self.power, "eps": self.eps,
                "trainable_power": self.trainable_power, "axis": self.axis}


class GeMPooling2D(keras.layers.Layer):
    """Windowed (not global) GeM: mean over each pooling window of x^p, then ^(1/p).

    [B,H,W,C] -> [B,H',W',C] with Keras' average-pooling window rules (`pool_size`,
    `strides`, `padding`, `data_format`), as the original's layer of this name.
    """

    def __init__(self, power: float = 3.0, pool_size=(2, 2), strides=None,
                 padding: str = "valid", data_format: str = "channels_last", **kwargs):
        super().__init__(**kwargs)
        self.power = float(power)
        self.eps = GEM_EPSILON
        self._pool = keras.layers.AveragePooling2D(pool_size=pool_size, strides=strides,
                                                   padding=padding, data_format=data_format)

    def call(self, x):
        x = tf.pow(tf.maximum(tf.cast(x, tf.float32), self.eps), self.power)
        return tf.pow(self._pool(x), 1.0 / self.power)


POOLING_LAYERS: dict[str, type] = {"mac": MAC, "spoc": SPoC, "gem": GeM}


def make_pooling(name: str, *, gem_power: float = 3.0, trainable_power: bool = False,
                 layer_name: str | None = None) -> keras.layers.Layer:
    """Pooling layer by name ("mac", "spoc", "gem"); the GeM options apply to "gem" only."""
    if name not in POOLING_LAYERS:
        raise ValueError(f"Unknown pooling {name!r}; expected one of {sorted(POOLING_LAYERS)}")
    if name == "gem":
        return GeM(power=gem_power, trainable_power=trainable_power, name=layer_name or "gem")
    return POOLING_LAYERS[name](name=layer_name or name)

"""The original's `delf.python.pooling_layers.pooling`:
this module is `delf_tf.models.pooling`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.models.pooling")

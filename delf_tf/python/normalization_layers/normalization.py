"""The original's `delf.python.normalization_layers.normalization`:
this module is `delf_tf.models.normalization`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.models.normalization")

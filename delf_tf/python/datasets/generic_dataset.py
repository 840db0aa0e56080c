"""The original's `delf.python.datasets.generic_dataset`:
this module is `delf_tf.global_features.images`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.global_features.images")

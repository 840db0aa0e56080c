"""The original's `delf.python.training.datasets.googlelandmarks`:
this module is `delf_tf.data.gld`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.data.gld")

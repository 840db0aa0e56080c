"""The original's `delf.python.utils`:
this module is `delf_tf.utils`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.utils")

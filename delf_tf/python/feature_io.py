"""The original's `delf.python.feature_io`:
this module is `delf_tf.io.feature_io`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.io.feature_io")

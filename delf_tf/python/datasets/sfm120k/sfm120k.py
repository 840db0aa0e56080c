"""The original's `delf.python.datasets.sfm120k.sfm120k`:
this module is `delf_tf.global_features.sfm`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.global_features.sfm")

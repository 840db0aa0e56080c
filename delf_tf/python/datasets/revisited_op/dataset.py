"""The original's `delf.python.datasets.revisited_op.dataset`:
this module is `delf_tf.retrieval.dataset`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.retrieval.dataset")

"""The original's `delf.python.detect_to_retrieve.dataset`:
this module is `delf_tf.retrieval.dataset`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.retrieval.dataset")

"""The original's `delf.python.detect_to_retrieve.image_reranking`:
this module is `delf_tf.matching.reranking`."""

from delf_tf.python import alias_module

alias_module(__name__, "delf_tf.matching.reranking")

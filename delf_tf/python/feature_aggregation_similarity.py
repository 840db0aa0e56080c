"""The original's `delf.python.feature_aggregation_similarity`:
this module is `delf_tf.aggregation.similarity`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.aggregation.similarity")

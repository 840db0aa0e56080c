"""The original's `delf.python.feature_aggregation_extractor`:
this module is `delf_tf.aggregation.extractor`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.aggregation.extractor")

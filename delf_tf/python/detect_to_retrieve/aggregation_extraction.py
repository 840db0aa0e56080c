"""The original's `delf.python.detect_to_retrieve.aggregation_extraction`:
this module is `delf_tf.aggregation.aggregation_extraction`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.aggregation.aggregation_extraction")

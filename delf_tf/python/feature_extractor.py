"""The original's `delf.python.feature_extractor`:
this module is `delf_tf.extraction.feature_extractor`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.extraction.feature_extractor")

"""The original's `delf.python.training.model.export_model_utils`:
this module is `delf_tf.extraction.pyramid`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.extraction.pyramid")

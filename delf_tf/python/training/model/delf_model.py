"""The original's `delf.python.training.model.delf_model`:
this module is `delf_tf.models.delf`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.models.delf")

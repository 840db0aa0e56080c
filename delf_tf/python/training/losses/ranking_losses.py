"""The original's `delf.python.training.losses.ranking_losses`:
this module is `delf_tf.models.ranking_losses`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.models.ranking_losses")

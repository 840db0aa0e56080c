"""The original's `delf.python.training.model.resnet50`:
this module is `delf_tf.models.resnet`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.models.resnet")

"""The original's `delf.python.datasets.google_landmarks_dataset.metrics`:
this module is `delf_tf.retrieval.gldv2`."""

from delf_tf.python import alias_module

__all__: list[str] = []

alias_module(__name__, "delf_tf.retrieval.gldv2")

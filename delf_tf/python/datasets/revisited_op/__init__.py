"""The original's `delf.python.datasets.revisited_op` package path:
aliases only, see delf_tf/python/__init__.py."""

__all__: list[str] = []

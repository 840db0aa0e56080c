"""The original's `delf.python.datasets` package path:
aliases only, see delf_tf/python/__init__.py."""

__all__: list[str] = []

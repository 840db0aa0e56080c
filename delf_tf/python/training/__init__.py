"""The original's `delf.python.training` package path:
aliases only, see delf_tf/python/__init__.py."""

__all__: list[str] = []

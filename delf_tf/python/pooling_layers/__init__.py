"""The original's `delf.python.pooling_layers` package path:
aliases only, see delf_tf/python/__init__.py."""

__all__: list[str] = []

"""The original's `delf.python.datasets.sfm120k` package path:
aliases only, see delf_tf/python/__init__.py."""

__all__: list[str] = []

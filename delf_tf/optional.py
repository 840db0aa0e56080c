"""Imports of dependencies that come from a pip extra, with an install hint when missing."""

import importlib
from types import ModuleType

__all__ = ["import_optional"]


def import_optional(module: str, extra: str) -> ModuleType:
    """Imports `module`; if it is not installed, raises ImportError naming the extra to install.

    Example: import_optional("sklearn.cluster", "aggregation") ->
      ImportError: sklearn.cluster is needed here: pip install 'delf_tf[aggregation]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed here and is not installed: pip install 'delf_tf[{extra}]' "
            f"(or pip install {e.name or module})") from e

"""Console-script targets: `delf-<tool> = delf_tf.tools.console:<tool>` for every tool in TOOLS.

setup.py generates the entry points from `delf_tf.tools.TOOLS`; each attribute of this
module is a zero-argument function that runs that tool on sys.argv.
"""

from collections.abc import Callable

from delf_tf import tools

__all__: list[str] = []


def __getattr__(name: str) -> Callable[[], None]:
    if name not in tools.TOOLS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (not a delf_tf tool)")
    return lambda: tools.run_tool(name)


def __dir__() -> list[str]:
    return list(tools.TOOLS)

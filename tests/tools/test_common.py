"""The tools' shared steps: logging configured once, the same way, by every tool."""

import logging
import os
import re

import pytest

from delf_tf import tools
from delf_tf.tools import common

_TOOLS_PACKAGE = os.path.dirname(os.path.abspath(tools.__file__))


def test_configure_logging_shows_the_librarys_info_lines(caplog):
    library = logging.getLogger("delf_tf")
    saved = library.level
    try:
        library.setLevel(logging.WARNING)
        common.configure_logging()
        with caplog.at_level(logging.INFO, logger="delf_tf.progress"):
            logging.getLogger("delf_tf.progress").info("Read 3/10 images")
        assert logging.getLogger("delf_tf.extraction.batch").isEnabledFor(logging.INFO)
        assert "Read 3/10 images" in caplog.text
    finally:
        library.setLevel(saved)


def test_every_tool_configures_logging_first():
    for tool in tools.TOOLS:
        with open(os.path.join(_TOOLS_PACKAGE, tool + ".py"), encoding="utf-8") as f:
            source = f.read()
        assert re.search(r"^(@common\.tool_main(\(.*\))?\ndef main\(\):|def main\(.*\n    common\."
                         r"configure_logging\(\))\n", source, re.M), (
            f"delf_tf/tools/{tool}.py: main() must be @common.tool_main or start with "
            "common.configure_logging()")


def test_tool_main_configures_logging_refuses_arguments_and_reports_input_errors():
    from absl import app

    calls = []

    @common.tool_main
    def main():
        calls.append(logging.getLogger("delf_tf").level)
        raise FileNotFoundError("a.delf: no such file")

    library = logging.getLogger("delf_tf")
    saved = library.level
    try:
        library.setLevel(logging.WARNING)
        with pytest.raises(app.UsageError, match="Unexpected arguments"):
            main(["tool", "stray"])
        assert calls == []
        with pytest.raises(SystemExit) as exited:
            main(["tool"])
        assert exited.value.code == "Error: a.delf: no such file"
        assert calls == [logging.INFO]

        @common.tool_main(also_reported=(ImportError,))
        def needs_an_extra():
            raise ImportError("numba is not installed")

        with pytest.raises(SystemExit) as exited:
            needs_an_extra(["tool"])
        assert exited.value.code == "Error: numba is not installed"

        @common.tool_main
        def plain():
            raise ImportError("numba is not installed")

        with pytest.raises(ImportError):  # not an input error: the traceback is shown
            plain(["tool"])
    finally:
        library.setLevel(saved)


def test_reported_errors_is_one_line_for_input_errors_only():
    for error in (FileNotFoundError("a.delf: no such file"), PermissionError("a.delf: denied"),
                  ValueError("--top_k must be >= 1")):
        with pytest.raises(SystemExit) as exited, common.reported_errors():
            raise error
        assert exited.value.code == f"Error: {error}"
    with pytest.raises(RuntimeError), common.reported_errors():
        raise RuntimeError("a bug: the traceback is shown")

"""The tool registry: every tool module is listed in TOOLS, has a shim in tools/ and runs
the same way through the shim, `python -m delf_tf.tools.<tool>` and `python -m delf_tf <tool>`."""

import os
import re
import subprocess
import sys

import pytest

from delf_tf import tools

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TOOLS_PACKAGE = os.path.dirname(os.path.abspath(tools.__file__))
_SHIM_DIR = os.path.join(_REPO, "tools")


def _shim_text(tool: str) -> str:
    return ('"""Shim: runs the tool of this name in delf_tf/tools/ (the console script '
            'delf-<name>)."""\n'
            "from delf_tf.tools import run_tool\n\n"
            'if __name__ == "__main__":\n'
            f'    run_tool("{tool}")\n')


def _modules_with_main() -> set[str]:
    found = set()
    for name in os.listdir(_TOOLS_PACKAGE):
        if name.endswith(".py") and not name.startswith("_"):
            with open(os.path.join(_TOOLS_PACKAGE, name), encoding="utf-8") as f:
                if re.search(r"^def main\(", f.read(), re.M):
                    found.add(name[:-3])
    return found


def test_every_tool_module_is_registered():
    assert _modules_with_main() == set(tools.TOOLS), (
        "every delf_tf/tools/<name>.py with a main() must be listed in delf_tf.tools.TOOLS")
    assert len(set(tools.TOOLS)) == len(tools.TOOLS)


@pytest.mark.parametrize("tool", tools.TOOLS)
def test_tool_module_and_shim(tool):
    with open(os.path.join(_TOOLS_PACKAGE, tool + ".py"), encoding="utf-8") as f:
        source = f.read()
    assert 'if __name__ == "__main__":\n    app.run(main)' in source
    with open(os.path.join(_SHIM_DIR, tool + ".py"), encoding="utf-8") as f:
        assert f.read() == _shim_text(tool), f"tools/{tool}.py is not the standard shim"


def test_no_stray_scripts_in_tools_folder():
    scripts = {name[:-3] for name in os.listdir(_SHIM_DIR) if name.endswith(".py")}
    assert scripts - set(tools.TOOLS) == set(), (
        "tools/ holds only shims: move a tool's code to delf_tf/tools/<name>.py, add '<name>' "
        "to TOOLS in delf_tf/tools/__init__.py and copy another shim to tools/<name>.py")
    assert set(tools.TOOLS) - scripts == set(), "a registered tool has no shim in tools/"


def test_console_targets():
    from delf_tf.tools import console

    assert callable(console.extract_features)
    with pytest.raises(AttributeError, match="not a delf_tf tool"):
        console.no_such_tool  # noqa: B018


def _run(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=_REPO)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=_REPO, timeout=120, **kwargs)


@pytest.mark.parametrize("launcher", [
    ["tools/compute_retrieval_metrics.py"],
    ["-m", "delf_tf.tools.compute_retrieval_metrics"],
    ["-m", "delf_tf", "compute-retrieval-metrics"],
])
def test_help_lists_the_tools_flags(launcher):
    result = _run([*launcher, "--help"])  # absl exits 1 after printing help
    assert "--solution_path" in result.stdout
    assert "mAP@100" in result.stdout  # the tool's docstring is the usage text


def test_module_main_lists_tools_and_rejects_unknown():
    listing = _run(["-m", "delf_tf", "--help"])
    assert listing.returncode == 0 and "delf-extract-delg-features" in listing.stdout
    unknown = _run(["-m", "delf_tf", "no_such_tool"])
    assert unknown.returncode != 0 and "Unknown delf_tf tool 'no_such_tool'" in unknown.stderr


def test_write_config_sets_model_path_and_threshold_from_attention_stats(tmp_path):
    from delf_tf import config as config_lib
    from delf_tf.training import summaries

    (tmp_path / "export").mkdir()
    summaries.WriteAttentionStats(str(tmp_path / "attention_stats.json"), 1200,
                                  {"percentiles": {"50": 3.25, "75": 7.5}})
    result = _run(["tools/write_config.py", "--template=r50delg_gldv2clean_config",
                   f"--model_path={tmp_path / 'export'}", "--nouse_pca",
                   f"--attention_stats_path={tmp_path / 'attention_stats.json'}",
                   "--attention_percentile=75", f"--output_path={tmp_path / 'c.pbtxt'}"])
    assert result.returncode == 0, result.stderr
    config = config_lib.ReadDelfConfig(str(tmp_path / "c.pbtxt"))
    assert config.model_path == str(tmp_path / "export")
    assert config.delf_local_config.score_threshold == 7.5
    assert not config.delf_local_config.use_pca and config.use_global_features
    assert list(config.image_scales) == list(
        config_lib.ReadDelfConfig("r50delg_gldv2clean_config").image_scales)
    missing = _run(["tools/write_config.py", f"--model_path={tmp_path / 'nothere'}",
                    f"--output_path={tmp_path / 'd.pbtxt'}"])
    assert missing.returncode != 0 and "nothere is not a directory" in missing.stderr


def test_every_tool_is_in_the_readme_tools_table():
    with open(os.path.join(_REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    table = readme[readme.index("| job | tool"):]
    table = table[:table.index("\n\n")]
    missing = [tools.script_name(t) for t in tools.TOOLS
               if f"`{tools.script_name(t)}`" not in table]
    assert not missing, f"tools without a row in the README's Tools table: {missing}"

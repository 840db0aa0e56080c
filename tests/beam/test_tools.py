"""The Beam aggregation and codebook-sampling tools, run once each on generated features:
the same files as the single-machine aggregation, the same sample as on one machine."""

import ast
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from delf_tf.aggregation import aggregation_extraction
from delf_tf.aggregation import codebook as codebook_lib
from tests.beam.test_aggregation import _NAMES, features  # noqa: F401 (fixture)
from tests.conftest import read_files

pytest.importorskip("apache_beam")

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TOOLS = ("beam_extract_aggregation", "beam_sample_descriptors")


def _run(tool, *args):
    return subprocess.run([sys.executable, os.path.join(_REPO, "tools", f"{tool}.py"), *args],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=_REPO))


def _image_list(path, names):
    # The extraction's image list: outputs are named by file name without extension.
    path.write_text("".join(f"/images/{name}.jpg\n" for name in names))
    return str(path)


def _flag_sources(tool):
    """The tool's module and the shared flag-group modules (delf_tf/tools/*_flags.py) it uses."""
    tools_dir = os.path.join(_REPO, "delf_tf", "tools")
    with open(os.path.join(tools_dir, f"{tool}.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    shared = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              and node.module == "delf_tf.tools" for alias in node.names
              if alias.name.endswith("_flags")}
    trees = [tree]
    for module in sorted(shared):
        with open(os.path.join(tools_dir, f"{module}.py"), encoding="utf-8") as f:
            trees.append(ast.parse(f.read()))
    return trees


@pytest.mark.parametrize("tool", _TOOLS)
def test_every_flag_has_help_text(tool):
    defines = [node for tree in _flag_sources(tool) for node in ast.walk(tree)
               if isinstance(node, ast.Call)
               and getattr(node.func, "attr", "").startswith("DEFINE_")]
    assert len(defines) >= 8
    for call in defines:
        help_text = call.args[-1] if len(call.args) >= 3 else None
        if isinstance(help_text, ast.BinOp):  # implicit concatenation is one Constant
            help_text = help_text.left
        assert isinstance(help_text, ast.Constant) and len(help_text.value) >= 15, (
            f"{tool}: flag {ast.literal_eval(call.args[0])!r} has no real help text")


def test_aggregation_tool_writes_the_single_machine_files(tmp_path, features):  # noqa: F811
    features_dir, config_path = features
    aggregation_extraction.ExtractAggregatedRepresentationsToFiles(
        _NAMES, features_dir, config_path, "", str(tmp_path / "tool"))
    images = _image_list(tmp_path / "images.txt", [*_NAMES, "missing"])
    result = _run("beam_extract_aggregation", f"--list_images_path={images}",
                  f"--features_dir={features_dir}", f"--aggregation_config_path={config_path}",
                  f"--output_aggregation_dir={tmp_path / 'beam'}",
                  f"--report_path={tmp_path / 'report.json'}", "--", "--direct_num_workers=1")
    assert result.returncode == 1, result.stderr  # one image has no feature file
    assert "missing" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "done": 6, "skipped": 0, "failed": 1}
    assert read_files(tmp_path / "beam") == read_files(tmp_path / "tool")
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["name"] for r in report["failed_images"]] == ["missing"]


def test_sampling_tool_writes_the_one_machine_sample_and_a_codebook(tmp_path, features):  # noqa: F811
    from delf_tf.beam import aggregation

    features_dir, _ = features
    images = _image_list(tmp_path / "images.txt", list(reversed(_NAMES)))
    sample_path, codebook_path = tmp_path / "sample.npy", tmp_path / "cb" / "codebook.datum"
    result = _run("beam_sample_descriptors", f"--list_images_path={images}",
                  f"--features_dir={features_dir}", "--descriptors_per_image=25",
                  f"--output_path={sample_path}", f"--codebook_path={codebook_path}",
                  "--num_clusters=4", "--num_iterations=5")
    assert result.returncode == 0, result.stderr
    expected = aggregation.SampleDescriptors(_NAMES, features_dir, ".delf", 25)
    np.testing.assert_array_equal(np.load(sample_path), expected)
    codebook = codebook_lib.ReadCodebook(str(codebook_path))
    np.testing.assert_array_equal(codebook,
                                  codebook_lib.TrainCodebook(expected, 4, 5, seed=0))

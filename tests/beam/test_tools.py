"""The Beam aggregation and codebook-sampling tools, run once each on generated features:
the same files as the single-machine aggregation, the same sample as on one machine."""

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


@pytest.mark.parametrize("tool", _TOOLS)
def test_every_flag_has_help_text(tool):
    # The flags the tool defines (absl files a flag under the tool's module, also when a
    # shared helper defines it), read from a fresh process that imports only this tool.
    code = ("import json; from absl import flags; import delf_tf.tools." + tool + "; "
            "print(json.dumps({f.name: f.help for f in "
            "flags.FLAGS.flags_by_module_dict()['delf_tf.tools." + tool + "']}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=dict(os.environ, PYTHONPATH=_REPO))
    help_texts = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(help_texts) >= 8, help_texts
    for name, help_text in help_texts.items():
        assert help_text and len(help_text) >= 15, f"{tool}: flag {name!r} has no real help text"


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

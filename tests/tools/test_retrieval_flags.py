"""The shared flag groups of delf_tf/tools/retrieval_flags.py: defined only when a tool calls
them, listed by that tool's --help as its own, and turned into the library's parameters."""

import json
import os
import subprocess
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=_REPO,
                          env=dict(os.environ, PYTHONPATH=_REPO), timeout=120)


@pytest.mark.parametrize("launcher", [
    ["tools/perform_retrieval.py"],
    ["-m", "delf_tf.tools.perform_retrieval"],
])
def test_help_lists_group_flags_as_the_tools_own(launcher):
    result = _python(*launcher, "--help")  # absl exits 1 after printing help
    # --help prints the key flags of the tool only (not every module's): the groups' flags
    # (evaluation files, geometric verification) are among them.
    for name in ("--dataset_file_path", "--query_features_dir", "--output_dir",
                 "--local_descriptor_matching_threshold", "--ransac_backend",
                 "--ransac_max_trials", "--use_geometric_verification"):
        assert name in result.stdout, (name, result.stdout[-2000:])
    assert "retrieval_flags" not in result.stdout
    assert "--only_check_args" not in result.stdout  # absl's own flags: --helpfull only


_SCRIPT = r"""
import json, sys
from absl import flags
before = set(flags.FLAGS)
from delf_tf.tools import retrieval_flags
assert set(flags.FLAGS) == before, "importing the shared module defined flags"
group = retrieval_flags.define_verification_flags(
    descriptor_matching_threshold=0.8, ransac_residual_threshold=20.0)
images = retrieval_flags.define_image_flags(image_set="query")
flags.FLAGS(["prog", "--ransac_max_trials=7", "--use_ratio_test", "--ransac_backend=skimage",
             "--list_images_path=x.txt"])
params = group.params()
print(json.dumps({"params": vars(params), "module": flags.FLAGS.find_module_defining_flag(
    "ransac_seed"), "list": images.list_images_path.value, "set": images.image_set.value}))
"""


def test_verification_group_builds_the_library_params():
    result = _python("-c", _SCRIPT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["params"] == {
        "descriptor_matching_threshold": 0.8, "ransac_residual_threshold": 20.0,
        "use_ratio_test": True, "ransac_seed": 0, "max_trials": 7, "ransac_backend": "skimage"}
    assert out["module"] == "-c"  # the caller's flags, not retrieval_flags'
    assert out["list"] == "x.txt" and out["set"] == "query"


def test_invalid_verification_values_name_the_tools_flag():
    script = (
        "from absl import flags\n"
        "from delf_tf.tools import retrieval_flags\n"
        "group = retrieval_flags.define_verification_flags(descriptor_matching_threshold=0.9,"
        " ransac_residual_threshold=20.0, threshold_name='local_descriptor_matching_threshold')\n"
        "flags.FLAGS(['prog', '--local_descriptor_matching_threshold=nan'])\n"
        "group.params()\n")
    result = _python("-c", script)
    assert result.returncode != 0
    assert ("ValueError: --local_descriptor_matching_threshold must be a finite number, got nan"
            in result.stderr)

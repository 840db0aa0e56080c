"""The flag groups of delf_tf/tools/extraction_flags.py: each tool that uses one lists the
group's flags as its own (key flags, shown by --help), and the parameter objects built from
the default flags are the library's defaults (so no field is left out of a tool's flags)."""

import json
import os
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One process imports the tools one after another, deleting each one's flags in between
# (as tests/test_readme_recipes.py does), and reports what each tool built from its defaults.
_PROBE = r"""
import importlib, json, sys
from absl import flags
from delf_tf.global_features import training as global_training
from delf_tf.how import training as how_training
from delf_tf.training import trainer

DEFAULTS = {"train": trainer.TrainConfig(),
            "train_how": how_training.TrainHowConfig(test_datasets=""),
            "train_global_features": global_training.TrainGlobalConfig()}

report = {}
for tool in sys.argv[1:]:
    before = set(flags.FLAGS)
    module = importlib.import_module("delf_tf.tools." + tool)
    new = set(flags.FLAGS) - before
    key = {flag.name for flag in flags.FLAGS.get_key_flags_for_module(module)}
    report[tool] = {"new": sorted(new), "key": sorted(key)}
    if tool in DEFAULTS:
        # What main() trains with when no flag is given: the library's default configuration.
        flags.FLAGS(["probe"])
        report[tool]["defaults"] = module._CONFIG.config() == DEFAULTS[tool]
        flags.FLAGS.unparse_flags()
    for name in new:
        delattr(flags.FLAGS, name)
    del sys.modules["delf_tf.tools." + tool]
print(json.dumps(report))
"""

_TOOLS = ("train", "train_how", "train_global_features", "export_local_model",
          "export_how_model", "extract_elfm_features", "beam_extract_features",
          "beam_sample_descriptors")


def test_groups_are_key_flags_of_each_tool_and_build_the_library_defaults():
    out = subprocess.run([sys.executable, "-c", _PROBE, *_TOOLS], capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=_REPO))
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for tool in _TOOLS:
        # Every flag a tool defines, its groups' included, is listed by its --help.
        assert set(report[tool]["new"]) <= set(report[tool]["key"]), tool
    assert {"backbone", "use_autoencoder", "ckpt_path", "overwrite", "iou_threshold"} <= set(
        report["export_local_model"]["key"])
    assert {"image_scales", "num_clusters", "num_shards"} <= set(
        report["extract_elfm_features"]["key"])
    assert {"runner", "features_dir", "list_images_path"} <= set(
        report["beam_sample_descriptors"]["key"])
    for tool in ("train", "train_how", "train_global_features"):
        assert report[tool]["defaults"], tool

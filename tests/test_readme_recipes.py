"""The README's recipes on real data: every `delf-*` command names a tool and only its flags,
and the DELG recipe from `delf-write-config` on (config from attention stats, extraction of
query and index, retrieval with re-ranking) runs as written on the demo set laid out like
Revisited Oxford (`data/roxford5k/jpg`, `data/gnd_roxford5k.mat`) with a tiny exported model."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from delf_tf import tools

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RECIPE = re.compile(r"<!-- recipe: (\w+) -->\n```bash\n(.*?)```", re.S)


def _recipes() -> dict[str, list[list[str]]]:
    """recipe name -> its commands (continuation lines joined, comments dropped), as argv."""
    with open(os.path.join(_REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    recipes = {}
    for name, block in _RECIPE.findall(text):
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
        recipes[name] = commands
    return recipes


def _tool_commands():
    return [(name, argv) for name, commands in _recipes().items() for argv in commands
            if argv[0].startswith("delf-")]


def test_recipes_are_found():
    assert {"data", "delg", "delg_star", "delf", "how", "elfm", "search", "gldv2"} <= set(
        _recipes())


_LIST_FLAGS = r"""
import importlib, json, sys
from absl import app, flags, logging  # their flags count as defined for every tool
accepted = {}
for tool in sys.argv[1:]:
    before = set(flags.FLAGS)
    importlib.import_module("delf_tf.tools." + tool)
    new = set(flags.FLAGS) - before
    accepted[tool] = sorted(new | before)
    for name in new:
        delattr(flags.FLAGS, name)
    del sys.modules["delf_tf.tools." + tool]
print(json.dumps(accepted))
"""


def test_every_recipe_command_is_a_tool_with_its_flags():
    commands = _tool_commands()
    script_to_tool = {tools.script_name(t): t for t in tools.TOOLS}
    unknown = sorted({argv[0] for _, argv in commands} - set(script_to_tool))
    assert not unknown, f"README recipes use commands that are no tool: {unknown}"
    needed = sorted({script_to_tool[argv[0]] for _, argv in commands})
    out = subprocess.run([sys.executable, "-c", _LIST_FLAGS, *needed], capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=_REPO))
    assert out.returncode == 0, out.stderr[-3000:]
    accepted = {tool: set(names) for tool, names in json.loads(out.stdout).items()}
    bad = []
    for recipe, argv in commands:
        flags = accepted[script_to_tool[argv[0]]]
        for arg in argv[1:]:
            assert arg.startswith("--"), f"{recipe}: positional argument {arg!r} in {argv}"
            name = arg[2:].split("=", 1)[0]
            if name not in flags and not (name.startswith("no") and name[2:] in flags):
                bad.append(f"{recipe}: {argv[0]} has no flag --{name}")
    assert not bad, "\n".join(bad)


def test_delg_recipe_runs_from_the_config_on(tmp_path, tiny_delg_export):
    from delf_tf.data import demo
    from delf_tf.training import summaries

    work = tmp_path / "work"
    dataset = demo.GenerateDemoDataset(str(tmp_path / "demo"), demo.DemoConfig(
        num_landmarks=2, image_size=128, train_per_landmark=1, noisy_per_landmark=0,
        queries_per_landmark=1, easy_per_landmark=2, hard_per_landmark=1, junk_per_landmark=0,
        num_distractors=2), log=lambda *_: None)
    os.makedirs(work / "data")
    shutil.copytree(dataset.images_dir, work / "data" / "roxford5k" / "jpg")
    shutil.copy(dataset.dataset_file_path, work / "data" / "gnd_roxford5k.mat")
    shutil.copytree(tiny_delg_export, work / "exports" / "delg")
    os.makedirs(work / "train" / "delg")
    # What delf-train records; an untrained model's attention is small, so keep everything.
    summaries.WriteAttentionStats(str(work / "train" / "delg" / "attention_stats.json"), 10,
                                  {"percentiles": {"50": 0.0}})

    commands = _recipes()["delg"]
    start = next(i for i, argv in enumerate(commands) if argv[0] == "delf-write-config")
    script_to_tool = {tools.script_name(t): t for t in tools.TOOLS}
    env = dict(os.environ, PYTHONPATH=_REPO)
    # The console scripts' programs, run from the checkout in the recipe's order, except that
    # consecutive extractions (query, index) run side by side, as they could.
    steps: list[list[list[str]]] = []
    for argv in commands[start:]:
        if steps and argv[0] == "delf-extract-delg-features" == steps[-1][0][0]:
            steps[-1].append(argv)
        else:
            steps.append([argv])
    for step in steps:
        running = [(argv, subprocess.Popen(
            [sys.executable, "-m", f"delf_tf.tools.{script_to_tool[argv[0]]}", *argv[1:]],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
            for argv in step]
        for argv, process in running:
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, f"{' '.join(argv)}\n{stderr[-3000:]}"

    from delf_tf.retrieval import dataset as revisited

    mean_ap = revisited.ReadMetricsFile(str(work / "results" / "roxford5k_delg" / "metrics.txt"))[0]
    assert set(mean_ap) == {"medium", "hard", "medium_after_gv", "hard_after_gv"}
    # global + local per image, and extraction_source.json (the model and config used)
    assert len(os.listdir(work / "features" / "roxford5k" / "query")) == 2 * 2 + 1
    assert len(os.listdir(work / "features" / "roxford5k" / "index")) == 2 * (2 * 3 + 2) + 1


@pytest.mark.parametrize("recipe", ["delg", "delf", "how", "elfm"])
def test_recipes_write_what_the_next_command_reads(recipe):
    """Within a recipe, every --*_path / --*_dir read by a later command is written earlier
    (or downloaded in the data recipe)."""
    commands = _recipes()[recipe]
    written = set()
    for argv in commands:
        for arg in argv[1:]:
            name, _, value = arg[2:].partition("=")
            if name in ("output_directory", "logdir", "directory", "export_path",
                        "output_path", "output_features_dir", "output_dir"):
                written.add(value)
    for argv in commands:
        for arg in argv[1:]:
            name, _, value = arg[2:].partition("=")
            if name in ("ckpt_path", "model_path", "attention_stats_path", "delf_config_path",
                        "config_path", "codebook_path", "index_path", "features_dir",
                        "query_features_dir", "index_features_dir"):
                assert any(value.startswith(w) for w in written), (
                    f"{recipe}: {arg} is never written")

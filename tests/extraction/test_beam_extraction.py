"""Beam extraction pipeline: the same files as the single-machine tool on the demo
images; killed mid-run and rerun, the set completes without duplicates or truncated files."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from delf_tf.extraction import batch, per_image
from delf_tf.io import feature_io
from tests.conftest import read_files
from tests.extraction.test_batch import write_config

pytest.importorskip("apache_beam")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _files(directory):
    """{name: bytes} of the feature files (the tools' record of model and config aside)."""
    from delf_tf.extraction import provenance

    return read_files(directory, leave_out={provenance.SIDECAR_NAME})


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, delg_export):
    """A small demo data set (3 queries, 9 index images), a DELG config, and the
    single-machine tool's files for both image sets."""
    from delf_tf.data import demo

    root = tmp_path_factory.mktemp("beam_demo")
    demo.GenerateDemoDataset(str(root / "demo"), demo.DemoConfig(
        num_landmarks=3, image_size=96, train_per_landmark=1, noisy_per_landmark=0,
        queries_per_landmark=1, easy_per_landmark=2, hard_per_landmark=0,
        junk_per_landmark=0, num_distractors=3), log=lambda *_: None)
    config_path = str(root / "config.pbtxt")
    write_config(config_path, delg_export, use_global=True)
    gnd_path, images_dir = str(root / "demo" / "gnd_demo.mat"), str(root / "demo" / "jpg")
    tool = {}
    for image_set in ("query", "index"):
        out = str(root / f"tool_{image_set}")
        assert batch.ExtractDelgFeatures(config_path, gnd_path, images_dir, image_set, out) == []
        tool[image_set] = _files(out)
    return config_path, gnd_path, images_dir, tool


def test_pipeline_writes_the_single_machine_files(tmp_path, demo_run):
    from delf_tf.beam import extraction

    config_path, gnd_path, images_dir, tool = demo_run
    # Queries: cropped to their boxes, as the tool does.
    tasks = per_image.TasksFromRevisited(gnd_path, images_dir, "query")
    tasks.append(per_image.ImageTask("missing", str(tmp_path / "missing.jpg")))
    job = per_image.MakeJob("delg", config_path, str(tmp_path / "beam"))
    report_path = str(tmp_path / "report.json")
    report = extraction.RunExtraction(tasks, job, report_path)
    assert report["done"] == len(tasks) - 1 and report["skipped"] == 0
    assert [r["name"] for r in report["failed_images"]] == ["missing"]
    assert "missing.jpg" in report["failed_images"][0]["error"]
    assert _files(tmp_path / "beam") == tool["query"]
    from delf_tf.extraction import provenance

    (source,) = json.loads((tmp_path / "beam" / provenance.SIDECAR_NAME).read_text())["sources"]
    assert source["config_path"] == config_path
    assert source["binarize_local_descriptors"] is False
    # Everything exists now: a second run skips every image.
    again = extraction.RunExtraction(tasks[:-1], job, report_path)
    assert again["skipped"] == len(tasks) - 1 and again["done"] == 0
    with pytest.raises(ValueError, match="same files"):
        extraction.RunExtraction(tasks[:1] * 2, job, report_path)


def test_killed_run_completes_on_rerun(tmp_path, demo_run):
    config_path, gnd_path, images_dir, tool = demo_run
    out = tmp_path / "beam"
    out.mkdir()
    # A temporary file a killed writer left behind is cleaned up by the next run.
    (out / ".chelsea_000000.delg_local.abc123.tmp").write_bytes(b"partial")
    (out / ".unrelated.tmp").write_bytes(b"not ours")
    command = [sys.executable, os.path.join(REPO, "tools", "beam_extract_features.py"),
               "--method=delg", f"--delf_config_path={config_path}", f"--output_dir={out}",
               f"--dataset_file_path={gnd_path}", f"--images_dir={images_dir}",
               "--image_set=index", f"--report_path={tmp_path / 'report.json'}"]
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if sum(n.endswith(".delg_global") for n in os.listdir(out)) >= 2:
            break
        time.sleep(0.02)
    killed = process.poll() is None
    if killed:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    first_run = [n for n in os.listdir(out) if n.endswith(".delg_global")]

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    # Exactly the tool's files (equal bytes: none truncated), nothing twice, no leftovers.
    files = _files(out)
    assert files.pop(".unrelated.tmp") == b"not ours"
    assert files == tool["index"]
    assert counts["failed"] == 0 and counts["done"] + counts["skipped"] == len(files) // 2
    if killed:
        assert counts["skipped"] >= len(first_run) - 1
    for name in files:
        if name.endswith(".delg_local"):
            feature_io.ReadFromFile(str(out / name))


def test_elfm_pipeline_writes_the_elfm_tools_files(tmp_path, demo_run, delg_model):
    """ELFM on Beam: the files of tools/extract_elfm_features.py (codes and floats)."""
    from delf_tf.beam import extraction
    from delf_tf.elfm import batch as elfm_batch
    from delf_tf.models import save_weights

    _, gnd_path, images_dir, _ = demo_run
    checkpoint = str(tmp_path / "delf_weights")
    save_weights(delg_model, checkpoint)
    options = dict(num_features=40, num_clusters=4, scales=[0.7071, 1.0])
    assert elfm_batch.ExtractElfmFeatures(checkpoint, gnd_path, images_dir, "query",
                                          str(tmp_path / "tool"), save_float=True,
                                          **options) == []
    job = per_image.MakeJob("elfm", checkpoint, str(tmp_path / "beam"), save_float=True,
                            **options)
    tasks = per_image.TasksFromRevisited(gnd_path, images_dir, "query")
    report = extraction.RunExtraction(tasks, job, str(tmp_path / "report.json"))
    assert report["done"] == len(tasks) and report["failed"] == 0
    tool = _files(tmp_path / "tool")
    assert sorted(tool) == sorted(f"{t.name}{ext}" for t in tasks
                                  for ext in (".elfm", ".elfm_float"))
    assert _files(tmp_path / "beam") == tool


def test_how_job_needs_a_local_only_config(tmp_path, demo_run):
    config_path = demo_run[0]  # DELG: local and global features
    job = per_image.MakeJob("how", config_path, str(tmp_path))
    with pytest.raises(ValueError, match="local features only"):
        job.outputs(per_image.ImageTask("a", "a.jpg"))
    with pytest.raises(ValueError, match="'elfm' only"):
        per_image.MakeJob("delg", config_path, str(tmp_path), save_float=True)

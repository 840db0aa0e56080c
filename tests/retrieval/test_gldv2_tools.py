"""The two Google Landmarks v2 metric tools, end to end on small CSV files."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(tool, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", tool), *args],
                          capture_output=True, text=True, timeout=120)


def test_recognition_tool(tmp_path):
    (tmp_path / "s.csv").write_text(
        "id,landmarks,Usage\na,1,Public\nb,2,Public\nc,,Public\nd,3,Private\n")
    (tmp_path / "p.csv").write_text("id,landmarks\na,1 0.9\nc,4 0.8\nb,2 0.7\nd,5 0.5\n")
    done = _run("compute_recognition_metrics.py", f"--solution_path={tmp_path / 's.csv'}",
                f"--predictions_path={tmp_path / 'p.csv'}")
    assert done.returncode == 0, done.stderr
    lines = {line[:30].strip(): line[30:].split() for line in done.stdout.splitlines()}
    # Public: hits at positions 1 and 3 of 3 predictions -> (1 + 2/3) / 2.
    assert lines["GAP"] == ["0.8333", "0.0000"]
    assert lines["GAP (landmark images only)"] == ["1.0000", "0.0000"]
    assert lines["Top-1 accuracy"] == ["1.0000", "0.0000"]


def test_retrieval_tool_and_bad_input(tmp_path):
    (tmp_path / "s.csv").write_text("id,images,Usage\nq1,x y,Public\nq2,z,Private\n")
    (tmp_path / "p.csv").write_text("id,images\nq1,y u x\nq2,z\n")
    done = _run("compute_retrieval_metrics.py", f"--solution_path={tmp_path / 's.csv'}",
                f"--predictions_path={tmp_path / 'p.csv'}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split() == ["mAP@100", "0.8333", "1.0000"]
    (tmp_path / "p.csv").write_text("id,images\nq9,y\n")
    failed = _run("compute_retrieval_metrics.py", f"--solution_path={tmp_path / 's.csv'}",
                  f"--predictions_path={tmp_path / 'p.csv'}")
    assert failed.returncode == 1 and "p.csv:2: test_id q9 is unrecognized" in failed.stderr

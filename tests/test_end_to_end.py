"""End to end: the run_demo tool (tools/run_demo.py) on a reduced demo set (few images, few steps).

Every stage runs the real tool as a subprocess, so this covers the command-line
surface the README's first command uses: data, TFRecords, training, export,
extraction (DELG and DELG*), retrieval with verification and both pictures.
"""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from delf_tf.retrieval import dataset as revisited

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_demo_reduced(tmp_path):
    output_dir = tmp_path / "demo"
    command = [
        sys.executable, os.path.join(_REPO, "tools", "run_demo.py"),
        f"--output_dir={output_dir}", "--num_landmarks=3", "--image_size=128",
        "--train_per_landmark=8", "--queries_per_landmark=1", "--index_per_landmark=2,1,1",
        "--num_distractors=3", "--train_image_size=64", "--batch_size=4", "--max_iters=3",
        "--image_scales=0.7071,1.0", "--global_scales_ind=0,1", "--max_feature_num=100",
        # 8 training images per landmark: HOW's 128-D whitening needs more than 128 descriptors
        # of its training split's images.
        "--nountrained", "--how_epochs=1", "--how_query_size=4"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # The table is printed and saved, with one row per pipeline of the trained model.
    table = (output_dir / "metrics_table.txt").read_text()
    assert "medium mAP" in table and "total" in table
    assert table in result.stdout
    summary = json.loads((output_dir / "results.json").read_text())
    assert set(summary["mAP"]) == {"trained"}
    global_only = revisited.ReadMetricsFile(
        str(output_dir / "trained" / "retrieval_global" / "metrics.txt"))[0]
    assert set(global_only) == {"medium", "hard"}
    assert summary["mAP"]["trained"]["global"] == global_only
    for variant in ("delg", "delg_star"):
        metrics_path = output_dir / "trained" / f"retrieval_{variant}" / "metrics.txt"
        mean_ap = revisited.ReadMetricsFile(str(metrics_path))[0]
        assert set(mean_ap) == {"medium", "hard", "medium_after_gv", "hard_after_gv"}
        assert all(0.0 <= v <= 1.0 for v in mean_ap.values())
        # The ranking before verification is the global-only one.
        assert mean_ap["medium"] == global_only["medium"]
        assert mean_ap["hard"] == global_only["hard"]
        assert summary["mAP"]["trained"][variant] == mean_ap
    # ASMK* over a codebook trained on the index features, in the same metrics format.
    asmk = revisited.ReadMetricsFile(
        str(output_dir / "trained" / "retrieval_asmk_star" / "metrics.txt"))[0]
    assert set(asmk) == {"medium", "hard"} and all(0.0 <= v <= 1.0 for v in asmk.values())
    assert summary["mAP"]["trained"]["asmk_star"] == asmk
    assert (output_dir / "trained" / "asmk" / "codebook" / "codebook.datum").is_file()
    assert "ASMK*" in table
    # ELFM from the same model: binary codes and the float ablation.
    for key in ("elfm", "elfm_float"):
        elfm = revisited.ReadMetricsFile(
            str(output_dir / "trained" / f"retrieval_{key}" / "metrics.txt"))[0]
        assert set(elfm) == {"medium", "hard"} and all(0.0 <= v <= 1.0 for v in elfm.values())
        assert summary["mAP"]["trained"][key] == elfm
    assert (output_dir / "trained" / "elfm.elfmidx").is_file()
    assert "ELFM (binary codes)" in table
    # Reproducibility: what the numbers depend on besides code and seed.
    environment = summary["environment"]
    assert environment["onednn"] in ("on", "off") and environment["cpu_model"]
    assert environment["tensorflow"] and environment["keras"] and environment["numpy"]
    # DELG and DELG* stages keep separate logs.
    logs = set(os.listdir(output_dir / "logs"))
    assert {"trained_retrieval_DELG_global_GV.log",
            "trained_retrieval_DELG_star_global_GV.log"} <= logs
    # HOW fine-tuned from the trained backbone, through the same ASMK* stages (its
    # DELF-ASMK* baseline is the trained model's ASMK* row).
    how = revisited.ReadMetricsFile(
        str(output_dir / "how" / "retrieval_asmk_star" / "metrics.txt"))[0]
    assert set(how) == {"medium", "hard"} and all(0.0 <= v <= 1.0 for v in how.values())
    assert summary["how_table"]["HOW"]["medium"] == how["medium"]
    assert summary["how_table"]["DELF"]["hard"] == asmk["hard"]
    for row in summary["how_table"].values():
        assert row["vectors_per_image"] > 0 and row["bytes_per_image"] > 0
    assert "HOW-ASMK*" in table and "DELF-ASMK*" in table
    for stage in ("demo data", "TFRecords", "train DELG", "trained: export", "match picture",
                  "attention picture"):
        assert summary["stage_seconds"][stage] > 0, stage

    # Features for every query and index image, binarized ones as uint8 bit packs.
    qimlist, imlist, _ = revisited.ReadDatasetFile(
        str(output_dir / "data" / "gnd_demo.mat"))
    assert len(qimlist) == 3 and len(imlist) == 3 * 4 + 3
    for variant in ("delg", "delg_star"):
        for image_set, names in (("query", qimlist), ("index", imlist)):
            directory = output_dir / "trained" / f"features_{variant}" / image_set
            for name in names:
                assert (directory / f"{name}.delg_global").is_file()
                assert (directory / f"{name}.delg_local").is_file()

    # The DelfConfig threshold is the median attention recorded by training.
    stats = json.loads((output_dir / "trained" / "train" / "attention_stats.json").read_text())
    config_text = (output_dir / "trained" / "delf_config.pbtxt").read_text()
    threshold = float(config_text.split("score_threshold:")[1].split()[0])
    np.testing.assert_allclose(threshold, stats["percentiles"]["50"], rtol=1e-5)

    for picture in ("match.png", "attention.png", "visual_words.png"):
        with Image.open(output_dir / "pictures" / picture) as image:
            assert image.format == "PNG" and min(image.size) > 16


def test_stage_logs_never_share_a_file(tmp_path):
    from delf_tf.tools import demo_workflow

    stages = demo_workflow._Stages(str(tmp_path), progress=lambda message: None)
    paths = [stages._log_path(name) for name in (
            "trained: retrieval (DELG, global + GV)", "trained: retrieval (DELG*, global + GV)",
            "trained: retrieval (DELG, global + GV)")]
    assert [os.path.basename(p) for p in paths] == [
            "trained_retrieval_DELG_global_GV.log", "trained_retrieval_DELG_star_global_GV.log",
            "trained_retrieval_DELG_global_GV_2.log"]


def test_environment_recorded_with_the_results():
    from delf_tf.tools import demo_workflow

    environment = demo_workflow._environment()
    assert environment["onednn"] in ("on", "off") and environment["cpu_model"]
    for library in ("tensorflow", "keras", "numpy", "python"):
        assert environment[library].count(".") >= 1, library

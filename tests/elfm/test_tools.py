"""tools/build_elfm_index.py and tools/perform_elfm_retrieval.py on generated .elfm files."""

import os
import subprocess
import sys

import numpy as np

from delf_tf.elfm import descriptor
from delf_tf.elfm import functional as F
from delf_tf.retrieval import dataset

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(tool, *args):
    return subprocess.run([sys.executable, os.path.join(_REPO, "tools", tool + ".py"), *args],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=_REPO))


def test_index_then_retrieval(tmp_path):
    rng = np.random.default_rng(0)
    index_names = [f"i{k}" for k in range(6)]
    gnd = [{"bbx": [0, 0, 10, 10], "easy": [2], "hard": [], "junk": []},
           {"bbx": [0, 0, 10, 10], "easy": [5], "hard": [], "junk": []}]
    dataset_path = str(tmp_path / "gnd.mat")
    dataset.WriteDatasetFile(dataset_path, index_names, ["q0", "q1"], gnd)
    bits = {name: rng.random([3, 128]) > 0.5 for name in index_names}
    bits["q0"], bits["q1"] = bits["i1"], bits["i4"]  # 1-based ids 2, 5: their codes
    for side, names in (("query", ["q0", "q1"]), ("index", index_names)):
        os.makedirs(tmp_path / side)
        for name in names:
            descriptor.WriteCodesToFile(F.pack_codes(bits[name]), 128,
                                        str(tmp_path / side / f"{name}.elfm"))
    index_path = str(tmp_path / "x.elfmidx")
    built = _run("build_elfm_index", f"--features_dir={tmp_path / 'index'}",
                 f"--dataset_file_path={dataset_path}", f"--output_path={index_path}")
    assert built.returncode == 0, built.stderr[-2000:]
    assert "6 images, K=3, D=128" in built.stdout
    done = _run("perform_elfm_retrieval", f"--dataset_file_path={dataset_path}",
                f"--query_features_dir={tmp_path / 'query'}", f"--index_path={index_path}",
                f"--output_dir={tmp_path / 'out'}", "--backend=numpy")
    assert done.returncode == 0, done.stderr[-2000:]
    mean_ap = dataset.ReadMetricsFile(str(tmp_path / "out" / "metrics.txt"))[0]
    assert mean_ap["medium"] == 1.0
    both = _run("build_elfm_index", f"--dataset_file_path={dataset_path}",
                f"--list_path={tmp_path / 'list.txt'}")
    assert both.returncode == 1
    assert "give exactly one of --dataset_file_path and --list_images_path" in both.stderr


def test_draw_match_map_tool(tmp_path, tiny_delg_export):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in ("q", "t"):
        Image.fromarray(rng.integers(0, 255, [96, 128, 3], dtype=np.uint8)).save(
            tmp_path / f"{name}.png")
    checkpoint = os.path.join(os.path.dirname(tiny_delg_export), "delf_weights")
    done = _run("draw_elfm_match_map", f"--model_path={checkpoint}",
                f"--query_image={tmp_path / 'q.png'}", f"--target_image={tmp_path / 't.png'}",
                f"--output_path={tmp_path / 'map.png'}", "--num_features=50",
                "--num_clusters=4", "--image_scales=1.0", "--max_image_size=128")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "S(q, c) = " in done.stdout
    assert Image.open(tmp_path / "map.png").size[0] > 128

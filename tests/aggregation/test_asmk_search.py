"""The ASMK* search jobs end to end on generated feature files: codebook,
index built and saved once, queried with metrics and kNN predictions; and
the three tools run as scripts."""

import os
import subprocess
import sys

import numpy as np
import pytest

from delf_tf.aggregation import asmk_search
from delf_tf.io import feature_io
from delf_tf.retrieval import dataset

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_features(path, descriptors):
    n = len(descriptors)
    feature_io.WriteToFile(path, np.zeros([n, 2]), np.ones([n]),
                           descriptors.astype(np.float32), np.ones([n]))


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory):
    """4 landmarks; 5 index images each plus 4 distractors; one query per
    landmark. An image of landmark l shows its 'parts' with noise."""
    root = tmp_path_factory.mktemp("asmk_search")
    rng = np.random.default_rng(0)
    parts = rng.normal(size=[4, 30, 32])
    features_dir = root / "features"
    features_dir.mkdir()
    index_names, labels = [], []
    for landmark in range(4):
        for j in range(5):
            index_names.append(f"l{landmark}_{j}")
            labels.append(landmark + 10)
    index_names += [f"distractor{j}" for j in range(4)]
    labels += [90, 91, 92, 93]

    def image(landmark):
        if landmark is None:
            return rng.normal(size=[40, 32])
        seen = parts[landmark][rng.choice(30, 20, replace=False)]
        return np.concatenate([seen + 0.1 * rng.normal(size=seen.shape),
                               rng.normal(size=[4, 32])])

    for name, label in zip(index_names, labels):
        _write_features(str(features_dir / f"{name}.delf"), image(None if label >= 90
                                                                   else label - 10))
    query_names = [f"q{landmark}" for landmark in range(4)]
    for landmark, name in enumerate(query_names):
        _write_features(str(features_dir / f"{name}.delf"), image(landmark))
    gnd = [{"bbx": [0, 0, 10, 10], "easy": [landmark * 5 + j + 1 for j in range(5)],
            "hard": [], "junk": []} for landmark in range(4)]
    dataset_path = str(root / "gnd_toy.mat")
    dataset.WriteDatasetFile(dataset_path, index_names, query_names, gnd)
    labels_path = root / "labels.csv"
    labels_path.write_text("id,landmark_id\n" + "".join(
        f"{n},{label}\n" for n, label in zip(index_names, labels)))
    return root, dataset_path, str(features_dir), str(labels_path)


def test_codebook_build_query(toy_dataset):
    pytest.importorskip("faiss")
    root, dataset_path, features_dir, labels_path = toy_dataset
    index_names = asmk_search.ReadImageNames(dataset_path, "index")
    codebook_path = str(root / "lib" / "codebook.datum")
    codebook = asmk_search.TrainCodebookFromFeatures(
        index_names, features_dir, ".delf", codebook_path, num_words=64, num_images=20)
    assert codebook.shape == (64, 32) and os.path.isfile(codebook_path)
    index_path = str(root / "lib" / "toy.asmk")
    stats = asmk_search.BuildIndexFromFeatures(
        codebook_path, index_names, features_dir, ".delf", index_path)
    assert stats["images"] == 24 and 0 < stats["vectors_per_image"] <= 24
    output_dir = str(root / "lib" / "results")
    result = asmk_search.QueryIndexWithFeatures(
        index_path, asmk_search.ReadImageNames(dataset_path, "query"), features_dir, ".delf",
        output_dir, top_k=5, dataset_file_path=dataset_path, index_labels_path=labels_path)
    # Every landmark's five images are found first.
    assert result["medium"] == pytest.approx(1.0)
    ranks = np.load(os.path.join(output_dir, "ranks.npy"))
    assert ranks.shape == (4, 5)
    np.testing.assert_array_equal(np.sort(ranks, axis=1), np.arange(20).reshape(4, 5))
    with open(os.path.join(output_dir, "predictions.csv")) as f:
        predictions = f.read().splitlines()
    assert predictions[0] == "id,landmarks"
    assert [line.split(",")[1].split()[0] for line in predictions[1:]] == ["10", "11", "12", "13"]
    assert os.path.isfile(os.path.join(output_dir, "metrics.txt"))


def test_tools_run(toy_dataset):
    pytest.importorskip("faiss")
    root, dataset_path, features_dir, _ = toy_dataset
    env = {**os.environ, "PYTHONPATH": _ROOT}
    common = [f"--dataset_file_path={dataset_path}", f"--features_dir={features_dir}"]
    codebook_path = str(root / "tools" / "codebook.datum")
    index_path = str(root / "tools" / "toy.asmk")
    for tool, flags in (
            ("train_asmk_codebook.py", ["--image_set=index", "--num_words=128",
                                        f"--output_path={codebook_path}"]),
            ("build_asmk_index.py", ["--image_set=index", f"--codebook_path={codebook_path}",
                                     f"--output_path={index_path}"]),
            ("query_asmk_index.py", [f"--index_path={index_path}", "--image_set=query",
                                     f"--output_dir={root / 'tools' / 'results'}"])):
        completed = subprocess.run([sys.executable, os.path.join(_ROOT, "tools", tool),
                                    *common, *flags], env=env, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr[-2000:]
    assert float(completed.stdout.split('"medium":')[1].split(",")[0]) > 0.8
    bad = subprocess.run([sys.executable, os.path.join(_ROOT, "tools", "build_asmk_index.py"),
                          *common, "--codebook_path=/nonexistent.datum"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "/nonexistent.datum" in bad.stderr

"""GlobalIndex: exact search equals global_search; faiss kinds, persistence, recall."""

import json
import os

import numpy as np
import pytest

from delf_tf.io import datum_io
from delf_tf.retrieval import global_index, search
from delf_tf.retrieval.global_index import GlobalIndex, GlobalIndexParams


def _data(num=400, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    # Clustered, like real descriptors: IVF cells then mean something.
    centres = rng.normal(size=(8, dim))
    x = centres[rng.integers(0, 8, num)] + 0.5 * rng.normal(size=(num, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    names = [f"img_{i:04d}" for i in range(num)]
    return names, x.astype(np.float32)


def test_exact_index_saves_loads_and_equals_global_search(tmp_path):
    names, x = _data()
    index = GlobalIndex.Build(names, x)
    manifest = index.Save(str(tmp_path / "idx"))
    assert manifest["num_images"] == 400 and "faiss" not in manifest["files"]
    loaded = GlobalIndex.Load(str(tmp_path / "idx"))
    assert loaded.names == names and isinstance(loaded.descriptors, np.memmap)
    ids, scores = loaded.Search(x[:5], top_k=10)
    expected_ids, expected_scores = search.global_search(x[:5], x, top_k=10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    assert loaded.BytesPerImage(str(tmp_path / "idx")) > 4 * 32


@pytest.fixture
def faiss():
    return pytest.importorskip("faiss")


@pytest.mark.parametrize("kind", ["ivf", "ivf_sq8", "hnsw"])
def test_approximate_kinds_round_trip_and_recall(tmp_path, kind, faiss):
    names, x = _data()
    params = GlobalIndexParams(kind=kind, nlist=8, nprobe=8, ef_search=64)
    index = GlobalIndex.Build(names, x, params)
    ids, scores = index.Search(x[:20], top_k=10)
    exact_ids, _ = index.Search(x[:20], top_k=10, exact=True)
    recall = global_index.RecallAtK(ids, exact_ids, 10)
    # Every cell scanned (IVF) / a wide beam (HNSW) on 400 points: (almost) exact.
    assert recall >= (0.9 if kind == "ivf_sq8" else 0.99), recall
    assert (ids[:, 0] == np.arange(20)).mean() >= 0.95  # each query finds itself first
    index.Save(str(tmp_path / "idx"))
    loaded = GlobalIndex.Load(str(tmp_path / "idx"))
    assert loaded.params == params
    np.testing.assert_array_equal(loaded.Search(x[:20], top_k=10)[0], ids)
    np.testing.assert_allclose(loaded.Search(x[:20], top_k=10)[1], scores, rtol=1e-6)


def test_fewer_cells_probed_lose_recall_not_correctness(faiss):
    names, x = _data(num=2000, seed=1)
    index = GlobalIndex.Build(names, x, GlobalIndexParams(kind="ivf", nlist=32, nprobe=1))
    exact_ids, _ = index.Search(x[:50], top_k=20, exact=True)
    ids, scores = index.Search(x[:50], top_k=20)
    full_ids, _ = index.Search(x[:50], top_k=20, nprobe=32)
    assert global_index.RecallAtK(full_ids, exact_ids, 20) == 1.0
    assert global_index.RecallAtK(ids, exact_ids, 20) < 1.0
    # Whatever it returns is scored exactly.
    found = ids >= 0
    np.testing.assert_allclose(scores[found], np.einsum(
        "qd,qkd->qk", x[:50], x[np.maximum(ids, 0)])[found], rtol=1e-5, atol=1e-6)


def test_saving_again_replaces_files_and_bad_inputs_are_named(tmp_path, faiss):
    names, x = _data(num=100)
    directory = str(tmp_path / "idx")
    GlobalIndex.Build(names, x, GlobalIndexParams(kind="hnsw")).Save(directory)
    GlobalIndex.Build(names[:50], x[:50]).Save(directory)
    with open(os.path.join(directory, "index.json")) as f:
        files = json.load(f)["files"]
    # manifest, names, descriptors of the new index; the old ones (and faiss) are gone.
    assert sorted(os.listdir(directory)) == sorted(["index.json", *files.values()])
    assert len(files) == 2
    assert GlobalIndex.Load(directory).num_images == 50
    with pytest.raises(ValueError, match="distinct"):
        GlobalIndex.Build(["a", "a"], x[:2])
    bad = x[:3].copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="img_0001"):
        GlobalIndex.Build(names[:3], bad)
    with pytest.raises(FileNotFoundError, match="no index.json"):
        GlobalIndex.Load(str(tmp_path))
    with pytest.raises(ValueError, match="kind must be one of"):
        GlobalIndexParams(kind="lsh")


def test_build_from_files(tmp_path):
    names, x = _data(num=30)
    for name, d in zip(names, x):
        datum_io.WriteToFile(d, str(tmp_path / f"{name}.delg_global"))
    index, stats = global_index.BuildFromFiles(
        names, str(tmp_path), ".delg_global", GlobalIndexParams())
    assert stats["num_images"] == 30 and stats["dim"] == 32
    np.testing.assert_array_equal(index.descriptors, x)


def test_build_and_query_tools(tmp_path, faiss):
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    names, x = _data(num=120)
    (tmp_path / "index").mkdir()
    (tmp_path / "query").mkdir()
    for name, d in zip(names, x):
        datum_io.WriteToFile(d, str(tmp_path / "index" / f"{name}.delg_global"))
    for name, d in zip(names[:4], x[:4]):
        datum_io.WriteToFile(d, str(tmp_path / "query" / f"q_{name}.delg_global"))
    env = dict(os.environ, PYTHONPATH=repo)

    def run(tool, *args):
        done = subprocess.run([sys.executable, os.path.join(repo, "tools", tool + ".py"), *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout[done.stdout.index("{"):])

    stats = run("build_global_index", f"--features_dir={tmp_path / 'index'}", "--kind=hnsw",
                f"--output_dir={tmp_path / 'idx'}")
    assert stats["num_images"] == 120 and stats["bytes_per_image"] > 4 * 32
    report = run("query_global_index", f"--index_dir={tmp_path / 'idx'}",
                 f"--query_features_dir={tmp_path / 'query'}", "--top_k=5", "--report_recall",
                 f"--output_path={tmp_path / 'out.json'}")
    assert report["num_queries"] == 4 and report["recall@5"] == 1.0
    with open(tmp_path / "out.json") as f:
        results = json.load(f)
    assert [results[f"q_{name}"][0][0] for name in names[:4]] == names[:4]

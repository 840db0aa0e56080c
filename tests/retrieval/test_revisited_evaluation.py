"""Revisited retrieval end to end on generated features: global ranking,
re-ranking by geometric verification, metrics and rankings written, and bad
input found before any work."""

import os
import subprocess
import sys

import numpy as np
import pytest

from delf_tf.io import datum_io, feature_io
from delf_tf.retrieval import dataset, evaluation

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_INDEX = 8


def _write_local(path, locations, descriptors):
    n = len(locations)
    feature_io.WriteToFile(str(path), locations, np.ones(n), descriptors, np.ones(n))


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _make_dataset(root, binary=False):
    """2 queries over 8 index images. Query 0: easy {5}, hard {6}, junk {1};
    query 1: easy {2}. The global descriptors rank the positives low; local
    features of the positives (and of junk image 1) are affine copies of the
    query's."""
    rng = np.random.default_rng(0)
    query_dir, index_dir = root / "query", root / "index"
    query_dir.mkdir()
    index_dir.mkdir()
    index_names = [f"img_{i}" for i in range(NUM_INDEX)]
    query_names = ["q_0", "q_1"]
    gnd = [{"bbx": [0, 0, 100, 100], "easy": [6], "hard": [7], "junk": [2]},
           {"bbx": [5, 5, 50, 50], "easy": [3], "hard": [], "junk": []}]
    dataset.WriteDatasetFile(str(root / "gnd.mat"), index_names, query_names, gnd)

    pack = (lambda d: np.packbits(d > 0, axis=1)) if binary else (lambda d: d)
    query_global = _unit(rng.normal(size=(2, 32)))
    # Index similarity to query 0, 1/sqrt(1 + t^2), decreases with the index id.
    basis, _ = np.linalg.qr(np.concatenate(
        [query_global[0][:, None], rng.normal(size=(32, NUM_INDEX))], axis=1))
    basis *= np.sign(basis[:, :1].T @ query_global[0])[0]
    index_global = _unit(query_global[0] + np.linspace(0.1, 3, NUM_INDEX)[:, None]
                         * basis[:, 1:].T)
    index_local = [(rng.uniform(0, 400, (80, 2)), _unit(rng.normal(size=(80, 64))))
                   for _ in range(NUM_INDEX)]
    for q in range(2):
        datum_io.WriteToFile(query_global[q], str(query_dir / f"q_{q}.delg_global"))
        locations = rng.uniform(0, 400, (100, 2))
        descriptors = _unit(rng.normal(size=(100, 64)))
        _write_local(query_dir / f"q_{q}.delg_local", locations, pack(descriptors))
        positives = {0: [(5, 60), (6, 40), (1, 70)], 1: [(2, 30)]}[q]
        for index_id, num_true in positives:
            model = np.array([[0.9, 0.1, 12.0], [-0.1, 1.1, -7.0]])
            true_locations = locations[:num_true] @ model[:, :2].T + model[:, 2]
            noisy = _unit(descriptors[:num_true] + 0.05 * rng.normal(size=(num_true, 64)))
            index_local[index_id] = (np.concatenate([true_locations, index_local[index_id][0]]),
                                     np.concatenate([noisy, index_local[index_id][1]]))
    for i, name in enumerate(index_names):
        datum_io.WriteToFile(index_global[i], str(index_dir / f"{name}.delg_global"))
        _write_local(index_dir / f"{name}.delg_local", index_local[i][0], pack(index_local[i][1]))
    return str(root / "gnd.mat"), str(query_dir), str(index_dir)


@pytest.mark.parametrize("binary", [False, True])
def test_geometric_verification_improves_and_writes_outputs(tmp_path, binary):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path, binary)
    out = tmp_path / "out"
    logs = []
    mean_ap = evaluation.evaluate_revisited(
        gnd_path, query_dir, index_dir, str(out), use_geometric_verification=True,
        log=logs.append)

    ranks_before = np.load(out / "ranks_before_gv.npy")
    medium_after = np.load(out / "ranks_after_gv_medium.npy")
    hard_after = np.load(out / "ranks_after_gv_hard.npy")
    assert ranks_before.shape == medium_after.shape == (2, NUM_INDEX)
    np.testing.assert_array_equal(ranks_before[0], np.arange(NUM_INDEX))
    # Verified positives first; junk image 1 is never verified (no jump).
    np.testing.assert_array_equal(medium_after[0][:3], [5, 6, 0])
    np.testing.assert_array_equal(medium_after[1][0], 2)
    # Under the hard protocol easy image 5 is junk: not verified.
    np.testing.assert_array_equal(hard_after[0][:2], [6, 0])

    assert mean_ap["medium_after_gv"] == 1.0 and mean_ap["hard_after_gv"] == 1.0
    assert mean_ap["medium"] < 0.6 and mean_ap["hard"] < 0.3
    read_ap, ranks, _, _ = dataset.ReadMetricsFile(str(out / "metrics.txt"))
    assert ranks == [1, 5, 10]
    assert set(read_ap) == {"medium", "hard", "medium_after_gv", "hard_after_gv"}
    assert read_ap["hard"] == pytest.approx(round(mean_ap["hard"] * 100, 2) / 100)
    table = logs[-1].splitlines()
    assert table[0].split() == ["protocol", "mAP", "mP@1", "mP@5", "mP@10"]
    assert table[-1].split()[:2] == ["hard_after_gv", "100.00"]


def test_without_verification_and_reproducibility(tmp_path):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    mean_ap = evaluation.evaluate_revisited(
        gnd_path, query_dir, index_dir, str(tmp_path / "a"), log=lambda _: None)
    assert set(mean_ap) == {"medium", "hard"}
    assert not (tmp_path / "a" / "ranks_after_gv_medium.npy").exists()
    # Same seed, same rankings, run after run.
    for name in ("b", "c"):
        evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(tmp_path / name),
                                      use_geometric_verification=True, log=lambda _: None)
    for suffix in ("medium", "hard"):
        np.testing.assert_array_equal(
            np.load(tmp_path / "b" / f"ranks_after_gv_{suffix}.npy"),
            np.load(tmp_path / "c" / f"ranks_after_gv_{suffix}.npy"))


def _tool(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "perform_retrieval.py"),
                           *args], capture_output=True, text=True, timeout=120)


def test_tool_reports_table_and_bad_files_before_work(tmp_path):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    common = [f"--dataset_file_path={gnd_path}", f"--query_features_dir={query_dir}",
              f"--index_features_dir={index_dir}", "--use_geometric_verification"]
    done = _tool(*common, f"--output_dir={tmp_path / 'ok'}")
    assert done.returncode == 0, done.stderr
    assert "medium_after_gv" in done.stdout and "Re-ranked query 2/2" in done.stdout
    assert (tmp_path / "ok" / "metrics.txt").exists()

    # Local features of a different dimension: reported before any work.
    bad = os.path.join(index_dir, "img_4.delg_local")
    _write_local(bad, np.zeros((3, 2)), np.ones((3, 32)) / np.sqrt(32))
    failed = _tool(*common, f"--output_dir={tmp_path / 'bad'}")
    assert failed.returncode == 1 and "img_4.delg_local" in failed.stderr
    assert "Re-ranked" not in failed.stdout and not (tmp_path / "bad").exists()

    os.remove(os.path.join(index_dir, "img_3.delg_global"))
    failed = _tool(*common, f"--output_dir={tmp_path / 'missing'}")
    assert failed.returncode == 1
    assert "1 feature file(s) missing" in failed.stderr and "img_3.delg_global" in failed.stderr
    assert not (tmp_path / "missing").exists()


def test_broken_files_name_the_file(tmp_path):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    with open(os.path.join(index_dir, "img_2.delg_local"), "wb") as f:
        f.write(b"\x0a\xff\xff\xff garbage")
    with pytest.raises(ValueError, match="img_2.delg_local"):
        evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(tmp_path / "o"),
                                      use_geometric_verification=True, log=lambda _: None)
    datum_io.WriteToFile(np.ones(5, np.float32), os.path.join(index_dir, "img_0.delg_global"))
    with pytest.raises(ValueError,
                       match="img_0.delg_global: global descriptor has 5 values, the others 32"):
        evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(tmp_path / "o"),
                                      log=lambda _: None)


def test_rerank_all_is_the_engine_per_query(tmp_path):
    """evaluate_revisited's re-ranking is reranking.rerank_query for every query
    with the protocol's junk images, and max_trials reaches RANSAC."""
    from delf_tf.matching import reranking
    from delf_tf.matching.params import VerificationParams

    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    params = VerificationParams(descriptor_matching_threshold=1.0,
                                ransac_residual_threshold=20.0, ransac_seed=3, max_trials=50)
    out = tmp_path / "out"
    evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(out),
                                  use_geometric_verification=True, verification=params,
                                  log=lambda _: None)
    queries, index, ground_truth = dataset.ReadDatasetFile(gnd_path)
    _, medium, hard = dataset.ParseEasyMediumHardGroundTruth(ground_truth)
    ranks = np.load(out / "ranks_before_gv.npy")
    for i, name in enumerate(queries):
        scores = np.zeros(NUM_INDEX)  # only the order of ranks[i] matters for ties below
        scores[ranks[i]] = np.linspace(1, 0, NUM_INDEX)
        engine = reranking.rerank_query(
            reranking.read_local_features(os.path.join(query_dir, f"{name}.delg_local")),
            ranks[i], scores,
            {"medium": set(medium[i]["junk"].tolist()), "hard": set(hard[i]["junk"].tolist())},
            lambda j: reranking.read_local_features(
                os.path.join(index_dir, f"{index[j]}.delg_local")), params)
        for protocol in ("medium", "hard"):
            np.testing.assert_array_equal(
                np.load(out / f"ranks_after_gv_{protocol}.npy")[i], engine[protocol])


def test_local_files_are_checked_by_their_head_then_in_full_when_read(tmp_path):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    path = os.path.join(index_dir, "img_1.delg_local")
    with open(path, "rb") as f:
        data = f.read()
    evaluation.check_local_feature_files([path])
    # Cut in the middle of the last feature: the head is intact, so the up-front
    # check passes, and reading the file for verification names it.
    with open(path, "wb") as f:
        f.write(data[:-7])
    evaluation.check_local_feature_files([path])
    with pytest.raises(ValueError, match="img_1.delg_local"):
        evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(tmp_path / "o"),
                                      use_geometric_verification=True, log=lambda _: None)


def test_each_local_feature_file_is_parsed_once_per_run(tmp_path, monkeypatch):
    gnd_path, query_dir, index_dir = _make_dataset(tmp_path)
    reads = []
    original = feature_io.read_features
    monkeypatch.setattr(feature_io, "read_features", lambda p: reads.append(p) or original(p))
    evaluation.evaluate_revisited(gnd_path, query_dir, index_dir, str(tmp_path / "out"),
                                  use_geometric_verification=True, log=lambda _: None)
    # Every query and index file (query 1 verifies all 8 index images), each once.
    assert sorted(reads) == sorted(
        [os.path.join(query_dir, f"q_{q}.delg_local") for q in range(2)]
        + [os.path.join(index_dir, f"img_{i}.delg_local") for i in range(NUM_INDEX)])

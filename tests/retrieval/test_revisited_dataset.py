"""Revisited Oxford/Paris ground truth, protocols and metrics (reference numbers)."""

import pathlib

import numpy as np
import pytest
from scipy import io as scipy_io

from delf_tf.retrieval import dataset


def test_adjust_positive_ranks():
    np.testing.assert_array_equal(
        dataset.AdjustPositiveRanks(np.array([0, 2, 6, 10, 20]), np.array([1, 8, 9, 30])),
        [0, 1, 5, 7, 17])
    np.testing.assert_array_equal(dataset.AdjustPositiveRanks([3, 4], []), [3, 4])


def test_average_precision():
    assert dataset.ComputeAveragePrecision(np.array([0, 2, 5])) == pytest.approx(
        0.677778, abs=1e-6)
    assert dataset.ComputeAveragePrecision(np.array([0, 1, 2])) == 1.0
    # One positive at rank 1: (0/1 + 1/2) / 2.
    assert dataset.ComputeAveragePrecision(np.array([1])) == pytest.approx(0.25)
    assert dataset.ComputeAveragePrecision(np.array([])) == 0.0


def test_precision_recall_at_ranks():
    precisions, recalls = dataset.ComputePRAtRanks(np.array([0, 2, 5]), [1, 5, 10])
    np.testing.assert_allclose(precisions, [1, 0.4, 0.5])
    np.testing.assert_allclose(recalls, [1 / 3, 2 / 3, 1])
    # No positives: zeros for every rank (as the original).
    precisions, recalls = dataset.ComputePRAtRanks(np.array([]), [1, 5])
    np.testing.assert_array_equal(precisions, [0.0, 0.0])
    np.testing.assert_array_equal(recalls, [0.0, 0.0])


def test_protocols():
    gt = [{"easy": np.array([0, 1]), "hard": np.array([2]), "junk": np.array([3]),
           "bbx": np.zeros(4)}]
    easy, medium, hard = dataset.ParseEasyMediumHardGroundTruth(gt)
    assert (sorted(easy[0]["ok"]), sorted(easy[0]["junk"])) == ([0, 1], [2, 3])
    assert (sorted(medium[0]["ok"]), sorted(medium[0]["junk"])) == ([0, 1, 2], [3])
    assert (sorted(hard[0]["ok"]), sorted(hard[0]["junk"])) == ([2], [0, 1, 3])


def test_compute_metrics():
    # Query 0: positives {4, 7, 1}, junk {9}; query 1 has no positives.
    ranking = np.array([[4, 9, 0, 7, 2, 3, 1, 5, 6, 8],
                        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    gt = [{"ok": np.array([4, 7, 1]), "junk": np.array([9])},
          {"ok": np.array([], np.int64), "junk": np.array([0])}]
    mean_ap, mean_p, mean_r, aps, precisions, recalls = dataset.ComputeMetrics(
        ranking, gt, [1, 5, 10])
    # Positive ranks [0, 3, 6] minus one junk before the last two -> [0, 2, 5].
    assert mean_ap == pytest.approx(0.677778, abs=1e-6)
    np.testing.assert_allclose(mean_p, [1, 0.4, 0.5])
    np.testing.assert_allclose(mean_r, [1 / 3, 2 / 3, 1])
    assert np.isnan(aps[1]) and np.isnan(precisions[1]).all() and np.isnan(recalls[1]).all()
    with pytest.raises(ValueError, match="ground truth has 2 queries"):
        dataset.ComputeMetrics(ranking[:1], gt)


def test_generated_mat_file_round_trip(tmp_path):
    path = str(tmp_path / "gnd_test.mat")
    imlist = ["all_souls_000013", "oxford_001", "radcliffe_camera_000523"]
    gnd = [{"bbx": [136.5, 34.1, 648.5, 955.9], "easy": [1, 3], "hard": [], "junk": [2]},
           {"bbx": [1, 2, 3, 4], "easy": [], "hard": [2], "junk": []}]
    dataset.WriteDatasetFile(path, imlist, ["q_a", "q_b"], gnd)

    # The layout of the original files, as scipy sees it.
    raw = scipy_io.loadmat(path)
    assert raw["imlist"].shape == (3, 1) and raw["qimlist"].shape == (1, 2)
    assert set(raw["gnd"].dtype.names) == {"bbx", "easy", "hard", "junk"}
    np.testing.assert_array_equal(raw["gnd"][0, 0]["easy"], [[1, 3]])

    query_list, index_list, ground_truth = dataset.ReadDatasetFile(path)
    assert query_list == ["q_a", "q_b"] and index_list == imlist
    np.testing.assert_array_equal(ground_truth[0]["easy"], [0, 2])
    np.testing.assert_array_equal(ground_truth[0]["junk"], [1])
    assert ground_truth[0]["hard"].size == 0 and ground_truth[0]["hard"].dtype == np.int64
    np.testing.assert_allclose(ground_truth[0]["bbx"], [136.5, 34.1, 648.5, 955.9])
    np.testing.assert_array_equal(ground_truth[1]["hard"], [1])


def test_bad_dataset_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mat"):
        dataset.ReadDatasetFile(str(tmp_path / "missing.mat"))
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="bad.mat"):
        dataset.ReadDatasetFile(str(bad))
    other = tmp_path / "other.mat"
    scipy_io.savemat(str(other), {"x": np.ones(3)})
    with pytest.raises(ValueError, match="no 'imlist'"):
        dataset.ReadDatasetFile(str(other))
    with pytest.raises(ValueError, match="1-based"):
        dataset.WriteDatasetFile(str(tmp_path / "g.mat"), ["a"], ["q"],
                                 [{"bbx": [0, 0, 1, 1], "easy": [0]}])


def test_metrics_file_round_trip(tmp_path):
    path = str(tmp_path / "metrics.txt")
    mean_ap = {"medium": 0.697123, "hard": 0.4511, "medium_after_gv": 0.75417,
               "hard_after_gv": 0.5372}
    mean_p = {k: np.array([0.857142, 0.794, 0.75]) for k in mean_ap}
    mean_r = {k: np.array([0.0354, 0.1127, 0.18161]) for k in mean_ap}
    dataset.SaveMetricsFile(mean_ap, mean_p, mean_r, [1, 5, 10], path)
    lines = pathlib.Path(path).read_text().splitlines()
    assert lines[:4] == ["hard", "  mAP=45.11", "  mP@k[ 1  5 10] [85.71 79.4  75.  ]",
                         "  mR@k[ 1  5 10] [ 3.54 11.27 18.16]"]
    assert [lines[i] for i in range(0, 16, 4)] == sorted(mean_ap)

    read_ap, ranks, read_p, read_r = dataset.ReadMetricsFile(path)
    assert ranks == [1, 5, 10] and set(read_ap) == set(mean_ap)
    assert read_ap["medium"] == pytest.approx(0.6971)
    np.testing.assert_allclose(read_p["hard"], [0.8571, 0.794, 0.75])
    np.testing.assert_allclose(read_r["hard"], [0.0354, 0.1127, 0.1816])


def test_bad_metrics_file(tmp_path):
    path = tmp_path / "metrics.txt"
    path.write_text("medium\n  mAP=12.5\n  mP@k[ 1  5 10] [1 2 3]\n")
    with pytest.raises(ValueError, match="4 per protocol"):
        dataset.ReadMetricsFile(str(path))
    path.write_text("medium\n  mAP=x\n  mP@k[ 1] [1]\n  mR@k[ 1] [1]\n")
    with pytest.raises(ValueError, match="bad mAP"):
        dataset.ReadMetricsFile(str(path))


@pytest.mark.parametrize("bad", ["../../x", "/abs/path/x", "a/../../x", ""])
@pytest.mark.parametrize("which", ["query", "index"])
def test_image_names_escaping_their_directory_are_refused(tmp_path, bad, which):
    # The names become <images_dir>/<name>.jpg and <output_dir>/<name>.delg_*.
    path = str(tmp_path / "gnd.mat")
    index, queries = ["i0", "i1"], ["q0"]
    if which == "query":
        queries = [bad]
    else:
        index = ["i0", bad]
    dataset.WriteDatasetFile(path, index, queries,
                             [{"bbx": [0, 0, 5, 5], "easy": [1], "hard": [], "junk": []}])
    with pytest.raises(ValueError, match=f"{which} image name .* not a relative path"):
        dataset.ReadDatasetFile(path)


@pytest.mark.parametrize("labels, message", [
        ({"easy": [99.0]}, "'easy' id 99 is outside the 2 index images"),
        ({"junk": [-5.0]}, "'junk' id -5 is outside"),
        ({"easy": [1.0], "junk": [1.0]}, "index image 1 is both 'easy' and 'junk'"),
        ({"easy": [2.0], "hard": [2.0]}, "index image 2 is both 'easy' and 'hard'"),
])
def test_inconsistent_ground_truth_is_refused(tmp_path, labels, message):
    # Such files gave numbers (an mP@1 of 110% for a positive that is also junk).
    path = str(tmp_path / "gnd.mat")
    dataset.WriteDatasetFile(path, ["i0", "i1"], ["q0"],
                             [{"bbx": [0, 0, 5, 5], "easy": [1], "hard": [], "junk": []}])
    contents = scipy_io.loadmat(path)
    for key in ("easy", "hard", "junk"):
        contents["gnd"][0, 0][key] = np.array([labels.get(key, [])], dtype=np.float64)
    scipy_io.savemat(path, {k: v for k, v in contents.items() if not k.startswith("__")})
    with pytest.raises(ValueError, match=f"gnd.mat: query 1 \\(q0\\).*{message}"):
        dataset.ReadDatasetFile(path)


def test_metrics_refuse_positive_junk_overlap_and_repeated_ranking():
    ranking = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="both positive and junk"):
        dataset.ComputeMetrics(ranking, [{"ok": np.array([0, 1]), "junk": np.array([1])}])
    with pytest.raises(ValueError, match="lists an index image twice"):
        dataset.ComputeMetrics(np.array([[0, 0, 2]]),
                               [{"ok": np.array([0]), "junk": np.array([], np.int64)}])


def test_file_format_lives_in_io_and_keeps_its_old_path():
    from delf_tf.io import revisited

    for name in ("ReadDatasetFile", "WriteDatasetFile", "CheckGroundTruth", "GroundTruth"):
        assert getattr(dataset, name) is getattr(revisited, name)
        assert name in dataset.__all__

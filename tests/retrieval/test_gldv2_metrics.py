"""Google Landmarks v2 metrics on hand-computed examples, and the CSV readers."""

import numpy as np
import pytest

from delf_tf.retrieval import gldv2

RECOGNITION_SOLUTION = {"a": [1], "b": [2], "c": [], "d": [3, 4]}
RECOGNITION_PREDICTIONS = {
    "a": {"class": 1, "score": 0.9},  # correct
    "c": {"class": 5, "score": 0.8},  # non-landmark image
    "b": {"class": 7, "score": 0.7},  # wrong
    "d": {"class": 3, "score": 0.6},  # correct
}
RETRIEVAL_SOLUTION = {"q1": ["x", "y"], "q2": ["z"], "q3": ["w"]}
RETRIEVAL_PREDICTIONS = {"q1": ["x", "u", "x", "y"], "q2": ["u", "z"]}


def test_global_average_precision():
    # Sorted a, c, b, d: hits at positions 1 and 4 -> (1 + 2/4) / 3.
    assert gldv2.GlobalAveragePrecision(
        RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION) == pytest.approx(0.5)
    # Without the non-landmark image: hits at 1 and 3 -> (1 + 2/3) / 3.
    assert gldv2.GlobalAveragePrecision(
        RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION,
        ignore_non_gt_test_images=True) == pytest.approx(5 / 9)
    assert np.isnan(gldv2.GlobalAveragePrecision({}, {"c": []}))


def test_top1_accuracy():
    assert gldv2.Top1Accuracy(RECOGNITION_PREDICTIONS, RECOGNITION_SOLUTION) == pytest.approx(
        2 / 3)
    assert gldv2.Top1Accuracy({}, RECOGNITION_SOLUTION) == 0.0


def test_retrieval_map_skips_duplicates():
    # q1: hits at 1 and 4 (the repeated x never counts) -> (1 + 2/4) / 2;
    # q2: hit at 2 -> 1/2; q3: no prediction -> 0.
    assert gldv2.MeanAveragePrecision(
        RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION) == pytest.approx((0.75 + 0.5) / 3)
    # Only the first 2 predictions count: q1 -> 1 / min(2, 2), q2 -> (1/2) / 1.
    assert gldv2.MeanAveragePrecision(
        RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=2) == pytest.approx(
            (0.5 + 0.5) / 3)


def test_mean_precisions_and_positions():
    np.testing.assert_allclose(
        gldv2.MeanPrecisions(RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=4),
        np.array([1 + 0, 0.5 + 0.5, 1 / 3 + 1 / 3, 0.5 + 0.25]) / 3)
    mean, median = gldv2.MeanMedianPosition(
        RETRIEVAL_PREDICTIONS, RETRIEVAL_SOLUTION, max_predictions=4)
    assert (mean, median) == (pytest.approx(8 / 3), 2.0)  # positions 1, 2 and 4 + 1


def test_predictions_for_unknown_images_raise():
    with pytest.raises(ValueError, match="zz is not part of the solution"):
        gldv2.MeanAveragePrecision({"zz": ["x"]}, RETRIEVAL_SOLUTION)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_read_recognition_files(tmp_path):
    solution = _write(tmp_path / "solution.csv",
                      "id,landmarks,Usage\na,1,Public\nb,2 5,Private\nc,,Public\n"
                      "d,9,Ignored\n")
    public, private, ignored = gldv2.ReadSolution(solution, gldv2.RECOGNITION_TASK_ID)
    assert public == {"a": [1], "c": []} and private == {"b": [2, 5]} and ignored == ["d"]
    predictions = _write(tmp_path / "predictions.csv",
                         "id,landmarks\na,1 0.5\nb,5 0.25\nc,\nd,3 0.1\n")
    public_predictions, private_predictions = gldv2.ReadPredictions(
        predictions, public, private, ignored, gldv2.RECOGNITION_TASK_ID)
    assert public_predictions == {"a": {"class": 1, "score": 0.5}}
    assert private_predictions == {"b": {"class": 5, "score": 0.25}}
    report = gldv2.recognition_report(solution, predictions)
    assert "GAP" in report and "Top-1 accuracy" in report and "1.0000" in report


def test_read_retrieval_files(tmp_path):
    solution = _write(tmp_path / "solution.csv",
                      "id,images,Usage\nq1,x y,Public\nq2,z,Private\n")
    public, private, ignored = gldv2.ReadSolution(solution, gldv2.RETRIEVAL_TASK_ID)
    assert public == {"q1": ["x", "y"]} and private == {"q2": ["z"]} and ignored == []
    predictions = _write(tmp_path / "predictions.csv", "id,images\nq1,y x\nq2,u v z\n")
    public_predictions, private_predictions = gldv2.ReadPredictions(
        predictions, public, private, ignored, gldv2.RETRIEVAL_TASK_ID)
    assert public_predictions == {"q1": ["y", "x"]}
    assert private_predictions == {"q2": ["u", "v", "z"]}
    report = gldv2.retrieval_report(solution, predictions).splitlines()
    assert report[1].split() == ["mAP@100", "1.0000", "0.3333"]
    assert report[-1].split() == ["median", "position", "1.0000", "3.0000"]


@pytest.mark.parametrize("text, message", [
    ("id,landmarks\nzz,1 0.5\n", "zz is unrecognized"),
    ("id,landmarks\na,1 0.5\na,1 0.5\n", "a is repeated"),
    ("id,landmarks\na,1\n", "malformed"),
    ("id,landmarks\na,1 high\n", "bad prediction"),
    ("id,landmarks\na,1,2\n", "expected 2 columns"),
    ("id,landmarks\na,1 nan\n", "score 'nan' is not a finite number"),
    ("id,landmarks\na,1 -inf\n", "score '-inf' is not a finite number"),
])
def test_bad_prediction_files(tmp_path, text, message):
    path = _write(tmp_path / "predictions.csv", text)
    with pytest.raises(ValueError, match=f"predictions.csv:\\d+: .*{message}"):
        gldv2.ReadPredictions(path, {"a"}, set(), [], gldv2.RECOGNITION_TASK_ID)


def test_bad_solution_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        gldv2.ReadSolution(str(tmp_path / "nope.csv"), gldv2.RETRIEVAL_TASK_ID)
    path = _write(tmp_path / "s.csv", "id,images,Usage\nq,x,Secret\n")
    with pytest.raises(ValueError, match="unrecognized Usage tag 'Secret'"):
        gldv2.ReadSolution(path, gldv2.RETRIEVAL_TASK_ID)
    with pytest.raises(ValueError, match="unknown task"):
        gldv2.ReadSolution(path, "detection")


def test_files_of_another_kind_are_refused_naming_them(tmp_path):
    solution = _write(tmp_path / "solution.csv", "id,images,Usage\nq1,x y,Public\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="binary.csv is not a readable CSV file"):
        gldv2.retrieval_report(solution, str(tmp_path / "binary.csv"))
    other = _write(tmp_path / "other.csv", "just one column\nx\n")
    with pytest.raises(ValueError, match="other.csv:1: the header has 1 column"):
        gldv2.retrieval_report(solution, other)

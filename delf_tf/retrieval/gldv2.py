"""Google Landmarks Dataset v2 challenge metrics and CSV files (the original's
`google_landmarks_dataset/metrics.py` and `dataset_file_io.py`).

Recognition: a prediction is {'class': landmark id, 'score': confidence} per
test image; the solution maps each test image to its landmark ids (empty for
non-landmark images). Retrieval: a prediction is a ranked list of index image
ids per test image; the solution maps each test image to its relevant index
images.

CSV files (with a header line):
  solution:     id,landmarks,Usage   (recognition; landmarks space separated,
                                      empty for non-landmark images)
                id,images,Usage      (retrieval; images space separated)
  predictions:  id,landmarks         (recognition; "<landmark_id> <score>")
                id,images            (retrieval; space separated, best first)
Usage is Public, Private or Ignored (ignored images are skipped everywhere).
"""

import csv
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from delf_tf import checks

__all__ = [
    # The original's names (the compatibility surface).
    "ReadSolution", "ReadPredictions", "GlobalAveragePrecision", "Top1Accuracy",
    "MeanAveragePrecision", "MeanPrecisions", "MeanMedianPosition",
    "WriteRetrievalPredictions", "WriteRecognitionPredictions",
    # delf_tf's own API.
    "RECOGNITION_TASK_ID", "RETRIEVAL_TASK_ID", "DEFAULT_MAX_PREDICTIONS",
    "RecognitionPredictions", "RetrievalPredictions", "Solution", "recognition_report",
    "retrieval_report",
]

RECOGNITION_TASK_ID = "recognition"
RETRIEVAL_TASK_ID = "retrieval"
_TASKS = (RECOGNITION_TASK_ID, RETRIEVAL_TASK_ID)
DEFAULT_MAX_PREDICTIONS = 100

RecognitionPredictions = Mapping[str, Mapping[str, float]]
RetrievalPredictions = Mapping[str, Sequence[str]]
Solution = Mapping[str, Sequence]


def _check_task(task: str) -> None:
    if task not in _TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {_TASKS}")


def _read_rows(file_path: str, num_columns: int):
    """Yields (line_number, row) of a CSV file after its header line."""
    file_path = os.fspath(file_path)
    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"No such file: {file_path}")
    try:
        with open(file_path, newline="", encoding="utf-8") as csv_file:
            reader = csv.reader(csv_file)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{file_path} is empty (a header line is expected)")
            if len(header) != num_columns:
                # Not this kind of file at all (binary, another CSV): no row would fit.
                raise ValueError(f"{file_path}:1: the header has {len(header)} column(s), "
                                 f"expected {num_columns}: {header[:5]}")
            for row in reader:
                if not row:
                    continue
                if len(row) != num_columns:
                    raise ValueError(
                        f"{file_path}:{reader.line_num}: expected {num_columns} columns, "
                        f"got {len(row)}: {row}")
                yield reader.line_num, row
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{file_path} is not a readable CSV file: {e}") from None


def ReadSolution(file_path: str, task: str) -> tuple[dict[str, list], dict[str, list], list[str]]:
    """Reads a solution CSV.

    Returns:
      (public_solution, private_solution, ignored_ids): the two dicts map test
      id -> landmark ids (int, recognition) or index image ids (str, retrieval).
    """
    _check_task(task)
    public_solution, private_solution, ignored_ids = {}, {}, []
    for line, (test_id, ground_truth, usage) in _read_rows(file_path, 3):
        if usage == "Ignored":
            ignored_ids.append(test_id)
            continue
        if task == RECOGNITION_TASK_ID:
            try:
                ids = [int(landmark_id) for landmark_id in ground_truth.split()]
            except ValueError as e:
                raise ValueError(f"{file_path}:{line}: bad landmark id in {ground_truth!r}") from e
        else:
            ids = ground_truth.split()
        if usage == "Public":
            public_solution[test_id] = ids
        elif usage == "Private":
            private_solution[test_id] = ids
        else:
            raise ValueError(
                f"{file_path}:{line}: test image {test_id} has unrecognized Usage tag {usage!r}")
    return public_solution, private_solution, ignored_ids


def ReadPredictions(
    file_path: str, public_ids, private_ids, ignored_ids, task: str,
) -> tuple[dict, dict]:
    """Reads a predictions CSV, split into (public, private) dicts.

    Recognition values are {'class': int, 'score': float}; retrieval values are
    lists of index image ids. Rows of ignored images are skipped; an unknown or
    repeated test id or a malformed prediction raises ValueError naming the
    line. Empty predictions are left out.
    """
    _check_task(task)
    public_ids, private_ids, ignored_ids = set(public_ids), set(private_ids), set(ignored_ids)
    public_predictions, private_predictions = {}, {}
    for line, (test_id, prediction) in _read_rows(file_path, 2):
        if test_id in ignored_ids:
            continue
        if test_id in public_ids:
            predictions = public_predictions
        elif test_id in private_ids:
            predictions = private_predictions
        else:
            raise ValueError(f"{file_path}:{line}: test_id {test_id} is unrecognized")
        if test_id in predictions:
            raise ValueError(f"{file_path}:{line}: test_id {test_id} is repeated")
        fields = prediction.split()
        if not fields:
            continue
        if task == RECOGNITION_TASK_ID:
            if len(fields) != 2:
                raise ValueError(
                    f"{file_path}:{line}: prediction is malformed: expected "
                    f"'<landmark_id> <score>', got {prediction!r}")
            try:
                predictions[test_id] = {"class": int(fields[0]), "score": float(fields[1])}
            except ValueError as e:
                raise ValueError(f"{file_path}:{line}: bad prediction {prediction!r}") from e
            if not math.isfinite(predictions[test_id]["score"]):
                # A NaN score would sort arbitrarily and change GAP silently.
                raise ValueError(f"{file_path}:{line}: score {fields[1]!r} is not a finite "
                                 "number")
        else:
            predictions[test_id] = fields
    return public_predictions, private_predictions


def _check_known(predictions: Mapping, solution: Solution) -> None:
    for test_id in predictions:
        if test_id not in solution:
            raise ValueError(f"Test image {test_id} is not part of the solution")


def GlobalAveragePrecision(
    predictions: RecognitionPredictions,
    recognition_solution: Solution,
    ignore_non_gt_test_images: bool = False,
) -> float:
    """Recognition GAP (micro-AP): predictions sorted by score, descending
    (ties by test image id, as the original); the precision at each correct prediction is
    summed and divided by the number of test images with ground truth.

    With `ignore_non_gt_test_images`, predictions for non-landmark images
    (empty ground truth) are dropped instead of counting as wrong. NaN if no
    test image has ground truth.
    """
    _check_known(predictions, recognition_solution)
    num_with_gt = sum(1 for ids in recognition_solution.values() if len(ids))
    if not num_with_gt:
        return float("nan")
    ranked = sorted(predictions.items(), key=lambda item: (-float(item[1]["score"]), item[0]))
    position = num_correct = 0
    total = 0.0
    for test_id, prediction in ranked:
        ground_truth = recognition_solution[test_id]
        if ignore_non_gt_test_images and not len(ground_truth):
            continue
        position += 1
        if prediction["class"] in ground_truth:
            num_correct += 1
            total += num_correct / position
    return total / num_with_gt


def Top1Accuracy(predictions: RecognitionPredictions, recognition_solution: Solution) -> float:
    """Fraction of test images with ground truth whose predicted landmark is
    correct (images without a prediction count as wrong). NaN if none has
    ground truth."""
    _check_known(predictions, recognition_solution)
    num_with_gt = num_correct = 0
    for test_id, ground_truth in recognition_solution.items():
        if not len(ground_truth):
            continue
        num_with_gt += 1
        if test_id in predictions and predictions[test_id]["class"] in ground_truth:
            num_correct += 1
    return num_correct / num_with_gt if num_with_gt else float("nan")


def _hits(prediction: Sequence[str], relevant: set, max_predictions: int) -> np.ndarray:
    """bool [max_predictions]: position i holds a relevant image seen for the
    first time (a repeated image never counts twice but keeps its position)."""
    hits = np.zeros([max_predictions], dtype=bool)
    seen = set()
    for i, image_id in enumerate(prediction[:max_predictions]):
        if image_id not in seen:
            hits[i] = image_id in relevant
            seen.add(image_id)
    return hits


def MeanAveragePrecision(
    predictions: RetrievalPredictions,
    retrieval_solution: Solution,
    max_predictions: int = DEFAULT_MAX_PREDICTIONS,
) -> float:
    """Retrieval mAP@max_predictions: per test image, the precision at each
    relevant image within the first `max_predictions` (duplicates skipped),
    summed and divided by min(#relevant, max_predictions); averaged over all
    solution test images (missing predictions count 0)."""
    _check_known(predictions, retrieval_solution)
    if not retrieval_solution:
        return float("nan")
    positions = np.arange(1, max_predictions + 1)
    total = 0.0
    for test_id, prediction in predictions.items():
        relevant = set(retrieval_solution[test_id])
        if not relevant:
            continue
        hits = _hits(prediction, relevant, max_predictions)
        precisions = np.cumsum(hits) / positions
        total += precisions[hits].sum() / min(len(relevant), max_predictions)
    return float(total / len(retrieval_solution))


def MeanPrecisions(
    predictions: RetrievalPredictions,
    retrieval_solution: Solution,
    max_predictions: int = DEFAULT_MAX_PREDICTIONS,
) -> np.ndarray:
    """Mean precision at k = 1..max_predictions (float64 [max_predictions]),
    averaged over all solution test images (duplicates skipped)."""
    _check_known(predictions, retrieval_solution)
    if not retrieval_solution:
        return np.full([max_predictions], np.nan)
    positions = np.arange(1, max_predictions + 1)
    total = np.zeros([max_predictions])
    for test_id, prediction in predictions.items():
        hits = _hits(prediction, set(retrieval_solution[test_id]), max_predictions)
        total += np.cumsum(hits) / positions
    return total / len(retrieval_solution)


def MeanMedianPosition(
    predictions: RetrievalPredictions,
    retrieval_solution: Solution,
    max_predictions: int = DEFAULT_MAX_PREDICTIONS,
) -> tuple[float, float]:
    """Mean and median 1-based position of the first relevant image over all
    solution test images; max_predictions + 1 where none is in the first
    max_predictions (or there is no prediction)."""
    _check_known(predictions, retrieval_solution)
    if not retrieval_solution:
        return float("nan"), float("nan")
    positions = []
    for test_id, relevant in retrieval_solution.items():
        hits = _hits(predictions.get(test_id, []), set(relevant), max_predictions)
        first = np.flatnonzero(hits)
        positions.append(first[0] + 1 if first.size else max_predictions + 1)
    return float(np.mean(positions)), float(np.median(positions))


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def recognition_report(solution_path: str, predictions_path: str) -> str:
    """Reads recognition solution and predictions CSVs; returns a table of GAP,
    GAP over landmark images only, and top-1 accuracy, public and private."""
    public_solution, private_solution, ignored_ids = ReadSolution(
        solution_path, RECOGNITION_TASK_ID)
    public_predictions, private_predictions = ReadPredictions(
        predictions_path, public_solution, private_solution, ignored_ids, RECOGNITION_TASK_ID)
    rows = [f"{'':<30}{'Public':>12}{'Private':>12}"]
    for name, metric in (
            ("GAP", GlobalAveragePrecision),
            ("GAP (landmark images only)",
             lambda p, s: GlobalAveragePrecision(p, s, ignore_non_gt_test_images=True)),
            ("Top-1 accuracy", Top1Accuracy)):
        rows.append(f"{name:<30}"
                    f"{_format(metric(public_predictions, public_solution)):>12}"
                    f"{_format(metric(private_predictions, private_solution)):>12}")
    return "\n".join(rows)


def retrieval_report(
    solution_path: str, predictions_path: str,
    max_predictions: int = DEFAULT_MAX_PREDICTIONS,
    precision_ranks: Sequence[int] = (1, 5, 10, 50, 100),
) -> str:
    """Reads retrieval solution and predictions CSVs; returns a table of
    mAP@max_predictions, mean precision at `precision_ranks` and mean/median
    position of the first relevant image, public and private."""
    checks.positive("max_predictions", max_predictions)
    public_solution, private_solution, ignored_ids = ReadSolution(
        solution_path, RETRIEVAL_TASK_ID)
    public_predictions, private_predictions = ReadPredictions(
        predictions_path, public_solution, private_solution, ignored_ids, RETRIEVAL_TASK_ID)
    ranks = [k for k in precision_ranks if 1 <= k <= max_predictions]
    splits = ((public_predictions, public_solution), (private_predictions, private_solution))
    values: dict[str, list[float]] = {f"mAP@{max_predictions}": [], **{
        f"mP@{k}": [] for k in ranks}, "mean position": [], "median position": []}
    for predictions, solution in splits:
        values[f"mAP@{max_predictions}"].append(
            MeanAveragePrecision(predictions, solution, max_predictions))
        precisions = MeanPrecisions(predictions, solution, max_predictions)
        for k in ranks:
            values[f"mP@{k}"].append(precisions[k - 1])
        mean, median = MeanMedianPosition(predictions, solution, max_predictions)
        values["mean position"].append(mean)
        values["median position"].append(median)
    rows = [f"{'':<20}{'Public':>12}{'Private':>12}"]
    rows += [f"{name:<20}{_format(public):>12}{_format(private):>12}"
             for name, (public, private) in values.items()]
    return "\n".join(rows)


def WriteRetrievalPredictions(
    file_path: str, predictions: RetrievalPredictions,
    max_predictions: int = DEFAULT_MAX_PREDICTIONS,
) -> None:
    """Writes a retrieval predictions CSV (`id,images`, ids space separated, best first).

    Args:
      file_path: output CSV, written atomically.
      predictions: test image id -> index image ids ranked best first (e.g. the ranking of
        delf-search); only the first `max_predictions` of each are written (the metric reads
        100). Ids must not contain spaces or commas.
    """
    from delf_tf.io import atomic

    lines = ["id,images"]
    for test_id, ranked in predictions.items():
        ids = [str(i) for i in list(ranked)[:max_predictions]]
        for value in (str(test_id), *ids):
            if not value or any(c in value for c in " ,\n\r\""):
                raise ValueError(f"GLDv2 image id {value!r} is empty or contains a space, comma,"
                                 " quote or newline")
        lines.append(f"{test_id},{' '.join(ids)}")
    atomic.write_bytes_atomic(os.fspath(file_path), ("\n".join(lines) + "\n").encode("utf-8"))


def WriteRecognitionPredictions(file_path: str, predictions: RecognitionPredictions) -> None:
    """Writes a recognition predictions CSV (`id,landmarks` with "<landmark_id> <score>").

    Args:
      predictions: test image id -> {'class': landmark id, 'score': confidence}; an empty
        mapping writes an empty prediction (the image is predicted as no landmark).
    """
    from delf_tf.io import atomic

    lines = ["id,landmarks"]
    for test_id, prediction in predictions.items():
        value = f"{int(prediction['class'])} {float(prediction['score']):.6g}" if prediction else ""
        lines.append(f"{test_id},{value}")
    atomic.write_bytes_atomic(os.fspath(file_path), ("\n".join(lines) + "\n").encode("utf-8"))

"""Metrics on inputs where the original's behaviour was measured: top-k rankings that
omit positives, repeated protocols in a metrics file, tied GAP scores."""

import numpy as np
import pytest

from delf_tf.retrieval import dataset, gldv2


def test_compute_metrics_accepts_rankings_omitting_positives():
    # 100 queries over 50 index images, ranked by a truncated top-10 list: the queries
    # whose positives fall outside it get AP 0, P@k = R@k = 0 (as the original).
    rng = np.random.default_rng(0)
    full = np.stack([rng.permutation(50) for _ in range(100)])
    ground_truth = [{"ok": rng.choice(50, 3, replace=False), "junk": np.array([], np.int64)}
                    for _ in range(100)]
    truncated = full[:, :10]
    mean_ap, _, _, aps, precisions, recalls = dataset.ComputeMetrics(
            truncated, ground_truth, [1, 5, 10])
    absent = [i for i in range(100) if not np.isin(ground_truth[i]["ok"], truncated[i]).any()]
    assert 0 < len(absent) < 100
    assert np.all(aps[absent] == 0.0)
    assert np.all(precisions[absent] == 0.0) and np.all(recalls[absent] == 0.0)
    assert mean_ap == pytest.approx(aps.mean())
    # Queries with a positive in the top 10 score as over the full ranking's positives found.
    present = [i for i in range(100) if i not in absent]
    i = present[0]
    ranks = np.flatnonzero(np.isin(truncated[i], ground_truth[i]["ok"]))
    assert aps[i] == pytest.approx(dataset.ComputeAveragePrecision(ranks))


def test_pr_at_ranks_without_positives_is_zero():
    precisions, recalls = dataset.ComputePRAtRanks(np.array([], np.int64), [1, 5, 10])
    np.testing.assert_array_equal(precisions, [0, 0, 0])
    np.testing.assert_array_equal(recalls, [0, 0, 0])


def test_read_metrics_file_rejects_a_repeated_protocol(tmp_path):
    path = tmp_path / "metrics.txt"
    block = "medium\n  mAP=69.71\n  mP@k[ 1  5 10] [85.71 79.43 75.14]\n" \
            "  mR@k[ 1  5 10] [ 3.54 11.27 18.16]\n"
    path.write_text(block)
    assert dataset.ReadMetricsFile(str(path))[0] == {"medium": pytest.approx(0.6971)}
    path.write_text(block + block)
    with pytest.raises(ValueError, match="protocol medium is found a second time"):
        dataset.ReadMetricsFile(str(path))


def test_gap_orders_tied_scores_by_test_image_id():
    predictions = {"b": {"class": 0, "score": 1.0}, "a": {"class": 1, "score": 1.0}}
    solution = {"a": [1], "b": [5]}
    assert gldv2.GlobalAveragePrecision(predictions, solution) == 0.5

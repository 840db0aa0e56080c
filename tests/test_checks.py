"""Argument checks: each bad value raises ValueError naming the parameter and value."""

import math
import os

import pytest

from delf_tf import checks


@pytest.mark.parametrize("check, value", [
        (checks.finite, math.nan), (checks.finite, math.inf), (checks.finite, "x"),
        (checks.positive, 0), (checks.positive, -1), (checks.positive, math.nan),
        (checks.non_negative, -1), (checks.non_negative, -math.inf),
])
def test_bad_values_raise_naming_the_parameter(check, value):
    with pytest.raises(ValueError, match=r"--some_flag must .*got"):
        check("--some_flag", value)


def test_good_values_pass_and_ranges():
    checks.finite("x", -3.5)
    checks.positive("x", 1e-9)
    checks.non_negative("x", 0)
    checks.in_range("x", 1.0, 0.0, 1.0, low_inclusive=False)
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\], got 0"):
        checks.in_range("x", 0, 0.0, 1.0, low_inclusive=False)
    with pytest.raises(ValueError, match="must not be empty"):
        checks.positive_list("--image_scales", [])
    with pytest.raises(ValueError, match="got 0"):
        checks.positive_list("--image_scales", [1.0, 0])


@pytest.mark.parametrize("name", ["../x", "../../etc/passwd", "/abs/path", "a/../../x", "",
                                  "..", "\\\\server\\share", "C:\\x", "a\0b"])
def test_names_escaping_their_directory_are_refused(name):
    with pytest.raises(ValueError, match="image name in gnd.mat"):
        checks.relative_name(name, "image name in gnd.mat")


@pytest.mark.parametrize("name", ["all_souls_000013", "sub/dir/x", "a..b", "..hidden", "x/./y"])
def test_relative_names_pass(name):
    assert checks.relative_name(name, "name") == name


def _entry_points():
    """(entry point call with one bad argument, the parameter the error must name).
    Every call points at files that do not exist: the check must come first."""
    from delf_tf.aggregation import codebook
    from delf_tf.data import builder
    from delf_tf.extraction import export
    from delf_tf.matching import match_images
    from delf_tf.matching.params import VerificationParams
    from delf_tf.retrieval import evaluation, gldv2
    from delf_tf.training import trainer

    def retrieval(**kwargs):
        return lambda: evaluation.evaluate_revisited("no.mat", "q", "i", "out", **kwargs)

    def verification(**kwargs):
        return lambda: VerificationParams(**kwargs)

    def train(**kwargs):
        return lambda: trainer.CheckTrainConfig(trainer.TrainConfig(**kwargs))

    def cluster(**kwargs):
        return lambda: codebook.ClusterDatasetFeatures("no.mat", "f", "c", **{
                "num_clusters": 8, **kwargs})

    return [
            (retrieval(num_to_rerank=-1), "num_to_rerank"),
            (retrieval(feature_cache_size=-1), "feature_cache_size"),
            (verification(max_trials=-1), "ransac_max_trials"),
            (verification(ransac_residual_threshold=-1.0), "ransac_residual_threshold"),
            (verification(ransac_residual_threshold=math.nan), "ransac_residual_threshold"),
            (verification(descriptor_matching_threshold=math.nan),
             "descriptor_matching_threshold"),
            (verification(descriptor_matching_threshold=0.0), "descriptor_matching_threshold"),
            (lambda: match_images.match_images("a", "b", "fa", "fb", "m.xyz"), "m.xyz"),
            (train(initial_lr=math.nan), "--initial_lr"),
            (train(initial_lr=-0.1), "--initial_lr"),
            (train(batch_size=0), "--batch_size"),
            (train(max_iters=-5), "--max_iters"),
            (train(attention_loss_weight=-1.0), "--attention_loss_weight"),
            (train(image_size=0), "--image_size"),
            (train(eval_interval=-1), "--eval_interval"),
            (cluster(num_clusters=0), "num_clusters"),
            (cluster(num_iterations=-1), "num_iterations"),
            (cluster(max_num_features=-1), "max_num_features"),
            (lambda: gldv2.retrieval_report("no.csv", "no.csv", max_predictions=0),
             "max_predictions"),
            (lambda: builder.BuildImageDataset(train_csv_path="no.csv", num_shards=0),
             "num_shards"),
            (lambda: builder.BuildImageDataset(train_csv_path="no.csv",
                                               generate_train_validation_splits=True,
                                               validation_split_size=math.nan),
             "validation_split_size"),
            (lambda: export.ExportLocalAndGlobalModel("no_ckpt", "e", iou_threshold=0.0),
             "iou_threshold"),
            (lambda: export.ExportGlobalModel("no_ckpt", "e", input_scales_list=[0.0, 1.0]),
             "input_scales_list"),
            (lambda: export.ExportGlobalModel("no_ckpt", "e", input_scales_list=[]),
             "input_scales_list"),
    ]


@pytest.mark.parametrize("index", range(24))
def test_entry_points_refuse_bad_arguments_before_any_work(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, name = _entry_points()[index]
    with pytest.raises(ValueError, match=name):
        call()
    assert os.listdir(tmp_path) == []


def test_every_entry_point_case_is_run():
    assert len(_entry_points()) == 24

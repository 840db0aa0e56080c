"""Runs the whole DELG workflow on the embedded demo data set, with the real tools.

Stages (each one a delf_tf tool run as a subprocess, `python -m delf_tf.tools.<tool>`, as a
user would; from a checkout or an installed package alike):
  1. make_demo_data            render the landmark set from scikit-image's photos
  2. build_image_dataset       GLDv2 CSVs -> TFRecord shards (train/validation)
  3. train                     DELG with the autoencoder (local + global features)
  4. export_local_and_global_model
  5. extract_delg_features     query + index, float and binarized (DELG*) local descriptors
  6. perform_retrieval         global only, then re-ranked by geometric verification
  7. cluster_delf_features, perform_aggregated_retrieval   ASMK* (local features only)
  8. extract_elfm_features, build_elfm_index, perform_elfm_retrieval   ELFM from the same
                               model (binary codes; the float cosine variant as ablation)
and the same export/extract/retrieve stages for the untrained model (fresh weights
of the same architecture); then a global descriptor trained on tuples (the demo's training
images as an SfM-style database, landmarks as clusters: train_global_features with mined hard
negatives and the contrastive loss, export_global_features_model, extract_delg_features,
perform_retrieval); then HOW fine-tuned on those tuples from the trained DELG backbone
(train_how, export_how_model, extract_delg_features, cluster_delf_features and
perform_aggregated_retrieval as for the DELG model's ASMK* row, its DELF-ASMK* baseline);
then a metrics table, a match picture and an attention
map for one query. The attention threshold of each DelfConfig is the median
attention seen at the end of training (`<logdir>/attention_stats.json`).

Example:
  python -m delf_tf.tools.run_demo --output_dir=demo_output   # or delf-run-demo, tools/run_demo.py
"""

import os

from absl import app, flags

from delf_tf.data import demo
from delf_tf.tools import common, demo_workflow

__all__ = ["main"]

# One set of defaults: the demo data set's and the workflow's.
_DATA = demo.DemoConfig()
_RUN = demo_workflow.DemoRunConfig()

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "demo_output",
    "Directory for everything the demo writes (reused stages are not skipped: it is rewritten).")
_SEED = flags.DEFINE_integer(
    "seed", _DATA.seed,
    "Seed of the data rendering, training, mining and RANSAC.")
_NUM_LANDMARKS = flags.DEFINE_integer(
    "num_landmarks", _DATA.num_landmarks,
    f"Landmarks in the demo set (at most {len(demo.LANDMARK_SOURCES)}).")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", _DATA.image_size,
    "Longer side of the rendered demo images, in pixels.")
_TRAIN_PER_LANDMARK = flags.DEFINE_integer(
    "train_per_landmark", _DATA.train_per_landmark,
    f"Training images per landmark ({_DATA.noisy_per_landmark} of them noisy, not in "
    "train_clean.csv).")
_QUERIES_PER_LANDMARK = flags.DEFINE_integer(
    "queries_per_landmark", _DATA.queries_per_landmark,
    "Query images per landmark.")
_INDEX_PER_LANDMARK = flags.DEFINE_list(
    "index_per_landmark", [str(count) for count in (
        _DATA.easy_per_landmark, _DATA.hard_per_landmark, _DATA.junk_per_landmark)],
    "Easy, hard and junk index images per landmark.")
_NUM_DISTRACTORS = flags.DEFINE_integer(
    "num_distractors", _DATA.num_distractors,
    "Index images without any landmark.")
_BACKBONE = flags.DEFINE_enum(
    "backbone", _RUN.backbone, ["resnet_tiny", "resnet50", "resnet101"],
    "Backbone of the DELG model (resnet_tiny keeps the demo within minutes on a CPU).")
_TRAIN_IMAGE_SIZE = flags.DEFINE_integer(
    "train_image_size", _RUN.train_image_size,
    "Side of the square training crops, in pixels.")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", _RUN.batch_size,
    "Training batch size of DELG.")
_MAX_ITERS = flags.DEFINE_integer(
    "max_iters", _RUN.max_iters,
    "Training steps of DELG.")
_INITIAL_LR = flags.DEFINE_float(
    "initial_lr", _RUN.initial_lr,
    "Initial learning rate (linear decay to 0 at --max_iters); higher than the original's 0.01 "
    "because the demo trains from scratch for a few hundred steps.")
_IMAGE_SCALES = flags.DEFINE_list(
    "image_scales", [str(scale) for scale in _RUN.image_scales],
    "Extraction pyramid scales (the DELG configs use 7, from 0.25 to 2.0; the demo images are "
    "small, so the smallest scales would yield a feature map of a cell or two).")
_GLOBAL_SCALES_IND = flags.DEFINE_list(
    "global_scales_ind", [str(index) for index in _RUN.global_scales_ind],
    "Indices into --image_scales pooled into the global descriptor (0.7071, 1, 1.4142 as the DELG "
    "configs).")
_MAX_FEATURE_NUM = flags.DEFINE_integer(
    "max_feature_num", _RUN.max_feature_num,
    "Local features kept per image (highest attention first).")
_NUM_TO_RERANK = flags.DEFINE_integer(
    "num_to_rerank", _RUN.num_to_rerank,
    "Top non-junk images re-ranked by geometric verification. ROxford re-ranks 100 of ~5000 (2%); "
    "on the demo's ~140 index images 100 would be nearly all of them, so the shortlist is scaled "
    "down.")
_UNTRAINED = flags.DEFINE_boolean(
    "untrained", _RUN.untrained,
    "Also run export/extract/retrieve with fresh (untrained) weights.")
_ASMK_CODEBOOK_SIZE = flags.DEFINE_integer(
    "asmk_codebook_size", _RUN.asmk_codebook_size,
    "Visual words of the ASMK* codebook trained on the index features (capped at a quarter of the "
    "number of index descriptors).")
_GLOBAL_TUPLES = flags.DEFINE_boolean(
    "global_tuples", _RUN.global_tuples,
    "Also train and evaluate a global descriptor on image tuples (GlobalFeatureNet, contrastive "
    "loss, hard negatives mined every epoch).")
_HOW = flags.DEFINE_boolean(
    "how", _RUN.how,
    "Also run HOW's Table 1 row: HOW (fixed attention, smoothing, PCA whitening) fine-tuned with "
    "the contrastive loss on tuples from the trained DELG model's backbone, with the same scales "
    "and ASMK* as the DELG model's local features (the DELF-ASMK* row).")
_HOW_EPOCHS = flags.DEFINE_integer(
    "how_epochs", _RUN.how_epochs,
    "HOW fine-tuning epochs.")
_HOW_QUERY_SIZE = flags.DEFINE_integer(
    "how_query_size", _RUN.how_query_size,
    "HOW fine-tuning tuples per epoch (hard negatives mined from 3x as many images).")
_GLOBAL_ARCH = flags.DEFINE_string(
    "global_arch", _RUN.global_arch,
    "Backbone of the tuple-trained global descriptor.")
_GLOBAL_IMAGE_SIZE = flags.DEFINE_integer(
    "global_image_size", _RUN.global_image_size,
    "Longer image side for tuple training (global descriptor and HOW) and the global descriptor's "
    "extraction.")
_GLOBAL_EPOCHS = flags.DEFINE_integer(
    "global_epochs", _RUN.global_epochs,
    "Tuple-training epochs.")
_GLOBAL_LR = flags.DEFINE_float(
    "global_lr", _RUN.global_lr,
    "Tuple-training learning rate (the original's 1e-6 fine-tunes ImageNet weights; the demo "
    "trains from scratch for a few epochs).")
_GLOBAL_MULTISCALE = flags.DEFINE_string(
    "global_multiscale", _RUN.global_multiscale,
    "Extraction scales of the tuple-trained descriptor, relative to the demo images "
    "(--image_size), e.g. '[1/2, 1/2**(1/2), 1]' (on the demo: about the same mAP, 3x the "
    "extraction time).")


def _parse_list(holder: flags.FlagHolder, cast: type, length: int | None = None) -> tuple:
    """The comma-separated flag's values cast to `cast`; UsageError naming the flag if not."""
    try:
        values = tuple(cast(v) for v in holder.value)
    except ValueError as e:
        raise app.UsageError(f"--{holder.name}: {e}") from None
    if length is not None and len(values) != length:
        raise app.UsageError(f"--{holder.name} takes {length} values, got {len(values)}")
    return values


def _data_config_from_flags() -> demo.DemoConfig:
    """The demo data set's settings from the flags; UsageError naming what is wrong."""
    easy, hard, junk = _parse_list(_INDEX_PER_LANDMARK, int, 3)
    data = demo.DemoConfig(
        num_landmarks=_NUM_LANDMARKS.value, image_size=_IMAGE_SIZE.value,
        train_per_landmark=_TRAIN_PER_LANDMARK.value,
        queries_per_landmark=_QUERIES_PER_LANDMARK.value, easy_per_landmark=easy,
        hard_per_landmark=hard, junk_per_landmark=junk, num_distractors=_NUM_DISTRACTORS.value,
        seed=_SEED.value)
    try:
        data.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    return data


def _config_from_flags() -> demo_workflow.DemoRunConfig:
    """The run's settings from the flags, validating the list flags."""
    return demo_workflow.DemoRunConfig(
        output_dir=_OUTPUT_DIR.value, data=_data_config_from_flags(), backbone=_BACKBONE.value,
        train_image_size=_TRAIN_IMAGE_SIZE.value, batch_size=_BATCH_SIZE.value,
        max_iters=_MAX_ITERS.value, initial_lr=_INITIAL_LR.value,
        image_scales=_parse_list(_IMAGE_SCALES, float),
        global_scales_ind=_parse_list(_GLOBAL_SCALES_IND, int),
        max_feature_num=_MAX_FEATURE_NUM.value, num_to_rerank=_NUM_TO_RERANK.value,
        untrained=_UNTRAINED.value, asmk_codebook_size=_ASMK_CODEBOOK_SIZE.value,
        global_tuples=_GLOBAL_TUPLES.value, how=_HOW.value,
        how_epochs=_HOW_EPOCHS.value, how_query_size=_HOW_QUERY_SIZE.value,
        global_arch=_GLOBAL_ARCH.value,
        global_image_size=_GLOBAL_IMAGE_SIZE.value, global_epochs=_GLOBAL_EPOCHS.value,
        global_lr=_GLOBAL_LR.value, global_multiscale=_GLOBAL_MULTISCALE.value)


def main(argv: list[str]) -> None:
    common.configure_logging()
    common.check_no_arguments(argv)
    config = _config_from_flags()
    # Quiets TensorFlow's C++ start-up logs here and in every tool run below.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with common.reported_errors(RuntimeError):
        demo_workflow.RunDemo(config)


if __name__ == "__main__":
    app.run(main)

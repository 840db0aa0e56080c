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
from delf_tf.tools import common, config_flags, demo_workflow

__all__ = ["main"]

# The demo data set's flags (make_demo_data's, one per DemoConfig field) but its seed, the seed of
# the whole run here, and the index counts, given here as one list; then one flag per field of
# the run's settings (DemoRunConfig). Names, types, defaults and help come from the classes.
_DATA = config_flags.define_config_flags(
    demo.DemoConfig,
    exclude=("seed", "easy_per_landmark", "hard_per_landmark", "junk_per_landmark"))
_SEED = flags.DEFINE_integer(
    "seed", demo.DemoConfig.seed,
    "Seed of the data rendering, training, mining and RANSAC.")
_INDEX_PER_LANDMARK = flags.DEFINE_list(
    "index_per_landmark", [str(count) for count in (
        demo.DemoConfig.easy_per_landmark, demo.DemoConfig.hard_per_landmark,
        demo.DemoConfig.junk_per_landmark)],
    "Easy, hard and junk index images per landmark.")
_RUN = config_flags.define_config_flags(demo_workflow.DemoRunConfig, exclude=("data",))


def _config_from_flags() -> demo_workflow.DemoRunConfig:
    """The run's settings from the flags; UsageError naming what is wrong."""
    easy, hard, junk = config_flags.list_value(_INDEX_PER_LANDMARK, int, length=3)
    data = _DATA.config(seed=_SEED.value, easy_per_landmark=easy, hard_per_landmark=hard,
                        junk_per_landmark=junk)
    try:
        data.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    return _RUN.config(data=data)


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

r"""Writes a DelfConfig for one's own exported model, from a template config.

Copies --template (a shipped config such as r50delg_gldv2clean_config, or any pbtxt path),
sets model_path to --model_path (made absolute, so extraction works from any folder) and the
local-feature attention threshold (score_threshold) from the training job's
`<logdir>/attention_stats.json`: the --attention_percentile-th percentile of the attention
scores recorded at the end of training (DELG uses the median, 50). --score_threshold sets it
directly instead.

Example:
  delf-write-config --template=r50delg_gldv2clean_config --model_path=exports/delg \
      --attention_stats_path=train/delg/attention_stats.json --output_path=delg_config.pbtxt
"""

import os

from absl import app, flags

from delf_tf.tools import common

__all__ = ["main"]

_TEMPLATE = flags.DEFINE_string(
    "template", "r50delg_gldv2clean_config",
    "Template DelfConfig: the name of a shipped config (delf_config_example, r50delg_gld_config, "
    "r50delg_gldv2clean_config, r101delg_gld_config, r101delg_gldv2clean_config, delg_gld_config) "
    "or a pbtxt path.")
_MODEL_PATH = flags.DEFINE_string(
    "model_path", None,
    "Exported SavedModel directory (from delf-export-*-model).")
_ATTENTION_STATS_PATH = flags.DEFINE_string(
    "attention_stats_path", None,
    "attention_stats.json written by delf-train into its --logdir; sets score_threshold.")
_ATTENTION_PERCENTILE = flags.DEFINE_enum(
    "attention_percentile", "50", ["1", "5", "10", "25", "50", "75", "90", "95", "99"],
    "Percentile of the recorded attention scores used as score_threshold (DELG: the median; the "
    "DELG paper's local feature ablation used the 75th).")
_SCORE_THRESHOLD = flags.DEFINE_float(
    "score_threshold", None,
    "Attention threshold to set directly (instead of --attention_stats_path).")
_MAX_FEATURE_NUM = flags.DEFINE_integer(
    "max_feature_num", None,
    "Maximum number of local features per image (template's if unset).")
_USE_PCA = flags.DEFINE_boolean(
    "use_pca", None,
    "Whether descriptors are PCA-projected (the template's setting if unset; --nouse_pca for "
    "one's own model, whose autoencoder already reduces the local descriptors).")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", None,
    "Where to write the DelfConfig pbtxt.")

flags.mark_flags_as_required(["model_path", "output_path"])


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    if _ATTENTION_STATS_PATH.value and _SCORE_THRESHOLD.value is not None:
        raise app.UsageError("give --attention_stats_path or --score_threshold, not both")
    from delf_tf import config as config_lib
    from delf_tf.training import summaries

    with common.reported_errors():
        config = config_lib.ReadDelfConfig(_TEMPLATE.value)
        if not os.path.isdir(_MODEL_PATH.value):
            raise FileNotFoundError(f"--model_path {_MODEL_PATH.value} is not a directory "
                                    "(export the model first)")
        config.model_path = os.path.abspath(_MODEL_PATH.value)
        threshold, source = _SCORE_THRESHOLD.value, "--score_threshold"
        if _ATTENTION_STATS_PATH.value:
            stats = summaries.ReadAttentionStats(_ATTENTION_STATS_PATH.value)
            try:
                threshold = float(stats["percentiles"][_ATTENTION_PERCENTILE.value])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{_ATTENTION_STATS_PATH.value} has no percentile "
                                 f"{_ATTENTION_PERCENTILE.value} of the attention scores") from e
            source = (f"percentile {_ATTENTION_PERCENTILE.value} of "
                      f"{_ATTENTION_STATS_PATH.value} (step {stats.get('step', '?')})")
        if threshold is not None:
            config.delf_local_config.score_threshold = threshold
        if _USE_PCA.value is not None:
            config.delf_local_config.use_pca = _USE_PCA.value
            config.delf_global_config.use_pca = _USE_PCA.value
        if _MAX_FEATURE_NUM.value is not None:
            config.delf_local_config.max_feature_num = _MAX_FEATURE_NUM.value
        config_lib.WriteConfig(_OUTPUT_PATH.value, config)
    kept = (f"score_threshold {threshold:.6g} from {source}" if threshold is not None else
            f"the template's score_threshold {config.delf_local_config.score_threshold:.6g} "
            "(give --attention_stats_path to use your model's)")
    print(f"Wrote {_OUTPUT_PATH.value}: model_path {config.model_path}, {kept}")


if __name__ == "__main__":
    app.run(main)

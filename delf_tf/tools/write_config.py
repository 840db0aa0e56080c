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

from absl import app, flags

from delf_tf.tools import common, config_flags
from delf_tf.training import summaries

__all__ = ["main"]

# One flag per ModelConfigParams field: its name, type, default and help (the class docstring).
_PARAMS = config_flags.define_config_flags(
    summaries.ModelConfigParams,
    choices={"attention_percentile": [str(p) for p in summaries.PERCENTILES]})

flags.mark_flags_as_required(["model_path", "output_path"])


@common.tool_main
def main():
    params = _PARAMS.config()
    if params.attention_stats_path and params.score_threshold is not None:
        raise app.UsageError("give --attention_stats_path or --score_threshold, not both")
    written = summaries.WriteModelConfig(params)
    print(f"Wrote {params.output_path}: {written}")


if __name__ == "__main__":
    app.run(main)

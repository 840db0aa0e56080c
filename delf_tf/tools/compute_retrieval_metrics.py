r"""Google Landmarks v2 retrieval metrics of a predictions CSV against a solution CSV.

Prints, for the Public and Private splits: mAP@100, mean precision at
1/5/10/50/100 and the mean/median position of the first relevant image.

Example:
  python tools/compute_retrieval_metrics.py --solution_path=retrieval_solution.csv \
      --predictions_path=my_predictions.csv
"""

from absl import app, flags

from delf_tf.retrieval import gldv2
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_metric_file_flags(
    solution_columns="id,images,Usage (images space separated; Usage Public/Private/Ignored)",
    predictions_columns="id,images (space separated, best first)")
_MAX_PREDICTIONS = flags.DEFINE_integer(
    "max_predictions", gldv2.DEFAULT_MAX_PREDICTIONS,
    "Predictions per query that count (mAP@k).")


@common.tool_main
def main():
    print(gldv2.retrieval_report(_FILES.solution_path.value, _FILES.predictions_path.value,
                                 _MAX_PREDICTIONS.value))


if __name__ == "__main__":
    app.run(main)

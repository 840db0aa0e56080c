r"""Google Landmarks v2 retrieval metrics of a predictions CSV against a solution CSV.

Prints, for the Public and Private splits: mAP@100, mean precision at
1/5/10/50/100 and the mean/median position of the first relevant image.

Example:
  python tools/compute_retrieval_metrics.py --solution_path=retrieval_solution.csv \
      --predictions_path=my_predictions.csv
"""

from absl import app, flags

from delf_tf.retrieval import gldv2
from delf_tf.tools import common

flags.DEFINE_string("solution_path", "/tmp/solution.csv",
                    "Solution CSV: id,images,Usage (images space separated; Usage "
                    "Public/Private/Ignored).")
flags.DEFINE_string("predictions_path", "/tmp/predictions.csv",
                    "Predictions CSV: id,images (space separated, best first).")
flags.DEFINE_integer("max_predictions", gldv2.DEFAULT_MAX_PREDICTIONS,
                     "Predictions per query that count (mAP@k).")

FLAGS = flags.FLAGS


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        print(gldv2.retrieval_report(FLAGS.solution_path, FLAGS.predictions_path,
                                     FLAGS.max_predictions))


if __name__ == "__main__":
    app.run(main)

r"""Retrieval with aggregated local features (ASMK*, ASMK or VLAD) on a
Revisited-format dataset (Detect-to-Retrieve's perform_retrieval).

Representations are read from --query/index_aggregation_dir (written by
extract_aggregation.py) when given, otherwise computed from the local feature
files in --query/index_features_dir. Writes `<output_dir>/metrics.txt` (the
format of perform_retrieval.py) and `<output_dir>/ranks.npy`.

Example:
  python tools/perform_aggregated_retrieval.py --dataset_file_path=gnd_roxford5k.mat \
    --query_features_dir=features/query --index_features_dir=features/index \
    --query_aggregation_config_path=configs/query_aggregation_config.pbtxt \
    --index_aggregation_config_path=configs/index_aggregation_config.pbtxt \
    --output_dir=results/asmk_star
"""

from absl import app

from delf_tf.aggregation import retrieval
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_evaluation_flags(
    files="local feature files (read when its --*_aggregation_dir is empty)",
    query_features_dir="", index_features_dir="", output_dir="/tmp/retrieval")
# One flag per AggregatedRetrievalParams field: its name, type, default and help (the class
# docstring).
_PARAMS = config_flags.define_config_flags(retrieval.AggregatedRetrievalParams)


@common.tool_main
def main():
    sides = _PARAMS.config().sides(_FILES.query_features_dir.value,
                                   _FILES.index_features_dir.value)
    retrieval.retrieve_aggregated(_FILES.dataset_file_path.value, *sides,
                                  _FILES.output_dir.value)


if __name__ == "__main__":
    app.run(main)

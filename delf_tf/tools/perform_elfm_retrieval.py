"""ELFM retrieval and evaluation on a Revisited Oxford/Paris-style dataset.

Ranks the index images for every query by S(q, c) = mean over query clusters of the best
1 - hamming / D among the image's clusters (or, with --use_float_descriptors, the cosine
variant), and writes `metrics.txt` (mAP, mP@k, mR@k for the medium and hard protocols) and
`ranks.npy` into --output_dir.

  python tools/perform_elfm_retrieval.py --dataset_file_path=gnd_roxford5k.mat \\
      --query_features_dir=elfm/roxford5k/query --index_path=elfm/roxford5k.elfmidx \\
      --output_dir=results/elfm
"""


from absl import app, flags

from delf_tf.elfm import batch
from delf_tf.elfm import index as elfm_index
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_evaluation_flags(
    files=".elfm (.elfm_float) files", query_features_dir="/tmp/elfm_features/query",
    index_features_dir="", output_dir="/tmp/elfm_retrieval",
    index_note=" (instead of --index_path; needed with --use_float_descriptors)")
_INDEX_PATH = flags.DEFINE_string(
    "index_path", "",
    "ELFM index file from build_elfm_index.py.")
_USE_FLOAT_DESCRIPTORS = flags.DEFINE_boolean(
    "use_float_descriptors", False,
    "Rank by the cosine variant (.elfm_float files) instead of Hamming.")
_BACKEND = flags.DEFINE_enum(
    "backend", "auto", list(elfm_index.BACKENDS),
    "Popcount backend: numba kernel, faiss, NumPy, or the fastest installed.")
_SHORTLIST_SIZE = flags.DEFINE_integer(
    "shortlist_size", 0,
    "If > 0, ELFM re-ranks only this many top images of a global-descriptor search (the rest "
    "keep their global order); needs --global_features_dir.")
_GLOBAL_FEATURES_DIR = flags.DEFINE_string(
    "global_features_dir", "",
    "Directory with query/ and index/ subdirectories of .delg_global files "
    "(extract_delg_features output) for --shortlist_size.")


@common.tool_main(also_reported=(ImportError,))
def main():
    batch.EvaluateElfm(_FILES.dataset_file_path.value, _FILES.query_features_dir.value,
                       _FILES.output_dir.value, index_path=_INDEX_PATH.value or None,
                       index_features_dir=_FILES.index_features_dir.value or None,
                       use_float=_USE_FLOAT_DESCRIPTORS.value, backend=_BACKEND.value,
                       global_features_dir=_GLOBAL_FEATURES_DIR.value or None,
                       shortlist_size=_SHORTLIST_SIZE.value)


if __name__ == "__main__":
    app.run(main)

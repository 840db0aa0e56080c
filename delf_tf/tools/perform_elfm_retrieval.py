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
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("dataset_file_path", "/tmp/gnd_roxford5k.mat",
                    "Revisited dataset ground-truth file.")
flags.DEFINE_string("query_features_dir", "/tmp/elfm_features/query",
                    "Directory of the queries' .elfm (.elfm_float) files.")
flags.DEFINE_string("index_path", "", "ELFM index file from build_elfm_index.py.")
flags.DEFINE_string("index_features_dir", "",
                    "Directory of the index images' .elfm files (instead of --index_path; "
                    "needed with --use_float_descriptors).")
flags.DEFINE_boolean("use_float_descriptors", False,
                     "Rank by the cosine variant (.elfm_float files) instead of Hamming.")
flags.DEFINE_enum("backend", "auto", list(elfm_index.BACKENDS),
                  "Popcount backend: numba kernel, faiss, NumPy, or the fastest installed.")
flags.DEFINE_integer("shortlist_size", 0,
                     "If > 0, ELFM re-ranks only this many top images of a global-descriptor "
                     "search (the rest keep their global order); needs --global_features_dir.")
flags.DEFINE_string("global_features_dir", "",
                    "Directory with query/ and index/ subdirectories of .delg_global files "
                    "(extract_delg_features output) for --shortlist_size.")
flags.DEFINE_string("output_dir", "/tmp/elfm_retrieval", "Where metrics.txt is written.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors(ImportError):
        batch.EvaluateElfm(FLAGS.dataset_file_path, FLAGS.query_features_dir, FLAGS.output_dir,
                           index_path=FLAGS.index_path or None,
                           index_features_dir=FLAGS.index_features_dir or None,
                           use_float=FLAGS.use_float_descriptors, backend=FLAGS.backend,
                           global_features_dir=FLAGS.global_features_dir or None,
                           shortlist_size=FLAGS.shortlist_size)


if __name__ == "__main__":
    app.run(main)

r"""Trains an ASMK codebook as HOW does: k-means (faiss assignment) over the
local descriptors of (at most --num_images of) the listed images.

Writes a DatumProto float [K, D] file for tools/build_asmk_index.py.

Example:
  python tools/train_asmk_codebook.py --list_images_path=train_images.txt \
    --features_dir=features/train --output_path=asmk/codebook.datum
"""

from absl import app, flags

from delf_tf.aggregation import asmk_search
from delf_tf.aggregation.asmk_index import APPROXIMATE_MIN_WORDS, KMEANS_ALGORITHMS, CodebookParams
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(image_set="index")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "codebook.datum",
    "Where the codebook (DatumProto float [K, D]) is written.")
_NUM_WORDS = flags.DEFINE_integer(
    "num_words", 65536,
    "Codebook size (visual words); HOW uses 65536.")
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 20000,
    "Descriptors of at most this many images, drawn at random, are clustered; HOW uses 20000 "
    "training images extracted at a single scale.")
_NUM_ITERATIONS = flags.DEFINE_integer(
    "num_iterations", 10,
    "Most k-means iterations (the asmk package's HOW setting is 10).")
_SEED = flags.DEFINE_integer(
    "seed", 0,
    "Seed of the image draw and of k-means.")
_KMEANS = flags.DEFINE_enum(
    "kmeans", "auto", list(KMEANS_ALGORITHMS),
    "k-means: 'faiss' runs all --num_iterations of faiss's k-means (as the asmk package); "
    "'converge' the same iterations, stopped once one lowers the mean squared distance by "
    "less than 1%; 'approximate' as 'converge', but each assignment after the first only "
    "among the previous word and its 32 nearest words (Philbin et al.'s approximate "
    f"k-means idea, for large codebooks); 'auto' is 'approximate' from "
    f"{APPROXIMATE_MIN_WORDS} words on, 'converge' below.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        params = CodebookParams(num_words=_NUM_WORDS.value, num_images=_NUM_IMAGES.value,
                                num_iterations=_NUM_ITERATIONS.value, seed=_SEED.value,
                                kmeans=_KMEANS.value)
        codebook = asmk_search.train_codebook_from_features(
            _IMAGES.names(), _IMAGES.files(), _OUTPUT_PATH.value, params)
    print(f"Wrote codebook {codebook.shape} to {_OUTPUT_PATH.value}")


if __name__ == "__main__":
    app.run(main)

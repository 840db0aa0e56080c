r"""Matches the DELF/DELG local features of two images and draws the inliers.

Finds, for each feature of image 2, its nearest neighbour among the features of
image 1 (kept within the descriptor distance threshold), verifies the matches
with an affine RANSAC, prints `Found N inliers` and saves the two images side
by side with a line per inlier match.

Example:
  python tools/match_images.py --image_1_path=a.jpg --image_2_path=b.jpg \
      --features_1_path=a.delf --features_2_path=b.delf --output_image=match.png
"""

from absl import app, flags

from delf_tf.matching import match_images, ransac
from delf_tf.matching.params import VerificationParams
from delf_tf.tools import common

flags.DEFINE_string("image_1_path", "test_images/image_1.jpg", "Path to the first image.")
flags.DEFINE_string("image_2_path", "test_images/image_2.jpg", "Path to the second image.")
flags.DEFINE_string("features_1_path", "test_features/image_1.delf",
                    "DelfFeatures file of the first image.")
flags.DEFINE_string("features_2_path", "test_features/image_2.delf",
                    "DelfFeatures file of the second image.")
flags.DEFINE_string("output_image", "test_match.png",
                    "Where to save the picture of the matches (.png, .jpg, ...); empty: none.")
flags.DEFINE_float("descriptor_matching_threshold",
                   match_images.DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD,
                   "Max Euclidean distance of a putative descriptor match (Hamming "
                   "distances of binarized descriptors are converted, see "
                   "delf_tf.matching.descriptor_matching).")
flags.DEFINE_float("ransac_residual_threshold", match_images.DEFAULT_RANSAC_RESIDUAL_THRESHOLD,
                   "Max transfer error in pixels of a RANSAC inlier.")
flags.DEFINE_boolean("use_ratio_test", False,
                     "Keep a match if d1 < threshold * d2 instead of d1 < threshold.")
flags.DEFINE_integer("ransac_seed", 0, "Seed of RANSAC (results are reproducible).")
flags.DEFINE_integer("ransac_max_trials", ransac.DEFAULT_MAX_TRIALS, "Number of RANSAC trials.")
flags.DEFINE_enum("ransac_backend", ransac.DEFAULT_BACKEND, list(ransac.BACKENDS),
                  "RANSAC implementation (addition to the original): numpy (the original's "
                  "scikit-image algorithm and random samples, vectorized: same inliers, a few "
                  "ms per pair), opencv (fastest; same statistics, different samples) or "
                  "skimage (the original's code, ~0.3 s per pair).")

flags.DEFINE_string("title", None, "First caption line of the picture (default: the two "
                    "image file names).")
flags.DEFINE_string("method", None, "Method named in the caption before the inlier count, e.g. "
                    "'DELG (trained)' (default: the kind of descriptors in the feature files).")

FLAGS = flags.FLAGS


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        result = match_images.match_images(
            FLAGS.image_1_path, FLAGS.image_2_path, FLAGS.features_1_path,
            FLAGS.features_2_path, FLAGS.output_image, VerificationParams(
                descriptor_matching_threshold=FLAGS.descriptor_matching_threshold,
                ransac_residual_threshold=FLAGS.ransac_residual_threshold,
                use_ratio_test=FLAGS.use_ratio_test, ransac_seed=FLAGS.ransac_seed,
                max_trials=FLAGS.ransac_max_trials, ransac_backend=FLAGS.ransac_backend),
            title=FLAGS.title, method=FLAGS.method)
    print(f"Found {result.num_inliers} inliers")
    if FLAGS.output_image:
        print(f"Saved the matches to {FLAGS.output_image}")


if __name__ == "__main__":
    app.run(main)

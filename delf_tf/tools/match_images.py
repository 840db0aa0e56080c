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

from delf_tf.matching import match_images
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_PAIR = retrieval_flags.define_image_pair_flags(
    images=("test_images/image_1.jpg", "test_images/image_2.jpg"),
    features=("test_features/image_1.delf", "test_features/image_2.delf"),
    output_image="test_match.png", output_optional=True)
_VERIFICATION = retrieval_flags.define_verification_flags(
    descriptor_matching_threshold=match_images.DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD,
    ransac_residual_threshold=match_images.DEFAULT_RANSAC_RESIDUAL_THRESHOLD)
_TITLE = flags.DEFINE_string(
    "title", None,
    "First caption line of the picture (default: the two image file names).")
_METHOD = flags.DEFINE_string(
    "method", None,
    "Method named in the caption before the inlier count, e.g. 'DELG (trained)' (default: "
    "the kind of descriptors in the feature files).")


@common.tool_main
def main():
    result = match_images.match_images(*_PAIR.paths(), _PAIR.output_image.value,
                                       _VERIFICATION.params(), title=_TITLE.value,
                                       method=_METHOD.value)
    print(f"Found {result.num_inliers} inliers")
    if _PAIR.output_image.value:
        print(f"Saved the matches to {_PAIR.output_image.value}")


if __name__ == "__main__":
    app.run(main)

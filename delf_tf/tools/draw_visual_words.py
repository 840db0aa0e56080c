r"""Draws two images with their local features coloured by visual word (HOW / ASMK* pictures).

Each feature is assigned its nearest word of --codebook_path (as ASMK assigns database
features); features whose word occurs in both images, the words through which ASMK* matches
the pair, are drawn as discs in the word's colour, the others as small grey rings. The caption
gives the feature and shared-word counts.

Example:
  delf-draw-visual-words --image_1_path=q.jpg --image_2_path=d.jpg \
      --features_1_path=features/query/q.delg_local --features_2_path=features/index/d.delg_local \
      --codebook_path=asmk/codebook.datum --method="HOW R18" --output_image=words.png
"""

import os

from absl import app, flags

from delf_tf.tools import common

_IMAGE_1_PATH = flags.DEFINE_string("image_1_path", None, "Path to the first image.")
_IMAGE_2_PATH = flags.DEFINE_string("image_2_path", None, "Path to the second image.")
_FEATURES_1_PATH = flags.DEFINE_string(
    "features_1_path", None, "DelfFeatures file (.delf / .delg_local) of the first image, "
    "locations in its pixels.")
_FEATURES_2_PATH = flags.DEFINE_string("features_2_path", None,
                                       "DelfFeatures file of the second image.")
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", None, "Visual-word codebook (DatumProto [K, D], e.g. from "
    "delf-train-asmk-codebook or delf-cluster-delf-features).")
_METHOD = flags.DEFINE_string("method", "local features", "Method named in the caption.")
_OUTPUT_IMAGE = flags.DEFINE_string("output_image", "visual_words.png",
                                    "Where to save the picture (.png, .jpg, ...).")

flags.mark_flags_as_required(["image_1_path", "image_2_path", "features_1_path",
                              "features_2_path", "codebook_path"])


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    import numpy as np
    from PIL import Image

    from delf_tf import utils
    from delf_tf.aggregation import codebook as codebook_lib
    from delf_tf.io import atomic, feature_io
    from delf_tf.matching import visualization

    with common.reported_errors():
        codebook = codebook_lib.ReadCodebook(_CODEBOOK_PATH.value)
        sides = []
        for image_path, features_path in ((_IMAGE_1_PATH.value, _FEATURES_1_PATH.value),
                                          (_IMAGE_2_PATH.value, _FEATURES_2_PATH.value)):
            locations, _, descriptors, _, _ = feature_io.ReadFromFile(features_path)
            if len(descriptors) and not np.issubdtype(descriptors.dtype, np.floating):
                raise ValueError(f"{features_path} holds binarized descriptors; visual words "
                                 "need the float ones")
            words = visualization.assign_visual_words(descriptors, codebook)
            sides.append((np.asarray(utils.RgbLoader(image_path)), locations, words))
        shared = set(sides[0][2].tolist()) & set(sides[1][2].tolist())
        caption = [
            f"{os.path.basename(_IMAGE_1_PATH.value)} vs {os.path.basename(_IMAGE_2_PATH.value)}",
            f"{_METHOD.value}: {len(sides[0][2])} and {len(sides[1][2])} features, "
            f"{len(shared)} of {len(codebook)} visual words in both (coloured)"]
        picture = visualization.draw_visual_words(
            sides[0][0], sides[1][0], sides[0][1], sides[1][1], sides[0][2], sides[1][2],
            caption=caption)
        extension = os.path.splitext(_OUTPUT_IMAGE.value)[1].lower()
        image_format = Image.registered_extensions().get(extension)
        if image_format is None:
            raise ValueError(f"unknown picture format for {_OUTPUT_IMAGE.value} (use .png)")
        atomic.write_bytes_atomic(_OUTPUT_IMAGE.value,
                                  visualization.encode_image(picture, image_format))
    print(f"{len(shared)} visual words in both images; saved {_OUTPUT_IMAGE.value}")


if __name__ == "__main__":
    app.run(main)

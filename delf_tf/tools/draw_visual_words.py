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

from absl import app, flags

from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_PAIR = retrieval_flags.define_image_pair_flags(
    images=(None, None), features=(None, None), output_image="visual_words.png")
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", None,
    "Visual-word codebook (DatumProto [K, D], e.g. from delf-train-asmk-codebook or "
    "delf-cluster-delf-features).")
_METHOD = flags.DEFINE_string(
    "method", "local features",
    "Method named in the caption.")

flags.mark_flags_as_required(["image_1_path", "image_2_path", "features_1_path",
                              "features_2_path", "codebook_path"])


@common.tool_main
def main():
    from delf_tf.matching import match_images

    shared = match_images.draw_visual_words(*_PAIR.paths(), _CODEBOOK_PATH.value,
                                            _PAIR.output_image.value, method=_METHOD.value)
    print(f"{shared} visual words in both images; saved {_PAIR.output_image.value}")


if __name__ == "__main__":
    app.run(main)

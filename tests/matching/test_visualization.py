"""Captioned match pictures and attention maps with a colour bar and the threshold."""

import numpy as np
import pytest

from delf_tf.matching import visualization


def _image(height=60, width=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, [height, width, 3], dtype=np.uint8)


def test_caption_band_holds_text_above_the_unchanged_picture():
    picture = _image()
    captioned = visualization.add_caption(picture, ["first line", "second: 12 inliers"])
    band_height = captioned.shape[0] - picture.shape[0]
    assert band_height > 20 and captioned.shape[1:] == picture.shape[1:]
    np.testing.assert_array_equal(captioned[band_height:], picture)
    band = captioned[:band_height]
    assert (band < 100).all(axis=-1).sum() > 20  # dark text pixels on white
    one_line = visualization.add_caption(picture, "first line")
    assert one_line.shape[0] < captioned.shape[0]
    assert visualization.add_caption(picture, None) is not None
    np.testing.assert_array_equal(visualization.add_caption(picture, None), picture)


def test_match_caption_and_picture():
    caption = visualization.match_caption("a.jpg vs b.jpg", "DELG", 17, 40)
    assert caption == ["a.jpg vs b.jpg", "DELG: 17 inliers of 40 putative matches"]
    picture = visualization.draw_matches(_image(60, 80), _image(50, 70, 1), [[10, 10]], [[20, 30]],
                                         caption=caption)
    assert picture.shape[1] == 150 and picture.shape[0] > 60


def test_attention_map_has_colour_bar_threshold_and_dimmed_overlay():
    image = np.full([64, 64, 3], 200, np.uint8)
    attention = np.array([[0.0, 1.0], [2.0, 4.0]])
    picture = visualization.draw_attention(image, attention, threshold=1.5,
                                           caption="DELG attention")
    width = picture.shape[1]
    assert width > 3 * 64 + 14  # image | map | overlay | bar
    body = picture[picture.shape[0] - 64:]
    overlay = body[:, 2 * (64 + 6):2 * (64 + 6) + 64]
    # Below the threshold (top half: 0.0 and 1.0) the overlay is dimmed to 30% of the image.
    np.testing.assert_array_equal(overlay[5, 5], [60, 60, 60])
    assert overlay[50, 50].max() > 60
    bar = body[:, 3 * (64 + 6):3 * (64 + 6) + 14]
    red_rows = np.flatnonzero((bar[:, 5, 0] > 200) & (bar[:, 5, 1] < 50) & (bar[:, 5, 2] < 50))
    # The threshold 1.5 on a 0..4 scale, top = 4: row (4 - 1.5) / 4 * 63 = 39.4.
    assert red_rows.size and abs(red_rows.mean() - 39.4) <= 2
    # Without a threshold: no red line, no dimming.
    plain = visualization.draw_attention(image, attention)
    assert plain.shape[0] == 64
    with pytest.raises(ValueError, match="attention must be"):
        visualization.draw_attention(image, np.zeros([3]))


def test_visual_words_assignment_and_picture():
    codebook = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)
    words = visualization.assign_visual_words([[0.9, 0.1], [0.1, 2.0], [-3.0, 0.5]], codebook)
    np.testing.assert_array_equal(words, [0, 1, 2])
    with pytest.raises(ValueError, match="3-D descriptors but a 2-D codebook"):
        visualization.assign_visual_words(np.zeros([1, 3]), codebook)
    image = np.full([40, 50, 3], 255, np.uint8)
    picture = visualization.draw_visual_words(
        image, image, [[10, 10], [30, 30]], [[20, 20]], [4, 7], [4], caption="x")
    body = picture[picture.shape[0] - 40:]
    shared_colour = body[10, 10]  # word 4 occurs in both: a filled coloured disc
    assert not (shared_colour == 255).all() and len(set(shared_colour.tolist())) > 1
    np.testing.assert_array_equal(body[20, 50 + 20], shared_colour)  # same word, same colour
    assert (body[30, 30] == 255).all()  # word 7 only in image 1: a grey ring, centre untouched


def test_draw_visual_words_tool(tmp_path):
    import os
    import subprocess
    import sys

    from PIL import Image

    from delf_tf.io import datum_io, feature_io

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=[8, 16]).astype(np.float32)
    for name in ("a", "b"):
        Image.fromarray(_image(64, 64, seed=ord(name))).save(tmp_path / f"{name}.png")
        locations = rng.uniform(0, 63, [20, 2])
        descriptors = codebook[rng.integers(0, 8, 20)] + 0.01 * rng.normal(size=[20, 16])
        feature_io.WriteToFile(str(tmp_path / f"{name}.delf"), locations, np.ones(20),
                               descriptors, np.ones(20))
    datum_io.WriteToFile(codebook, str(tmp_path / "codebook.datum"))
    result = subprocess.run(
        [sys.executable, os.path.join(repo, "tools", "draw_visual_words.py"),
         f"--image_1_path={tmp_path / 'a.png'}", f"--image_2_path={tmp_path / 'b.png'}",
         f"--features_1_path={tmp_path / 'a.delf'}", f"--features_2_path={tmp_path / 'b.delf'}",
         f"--codebook_path={tmp_path / 'codebook.datum'}", "--method=HOW",
         f"--output_image={tmp_path / 'words.png'}"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=repo))
    assert result.returncode == 0, result.stderr
    assert "visual words in both images" in result.stdout
    width, height = Image.open(tmp_path / "words.png").size
    assert width == 128 and height > 64

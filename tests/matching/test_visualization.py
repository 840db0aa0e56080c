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

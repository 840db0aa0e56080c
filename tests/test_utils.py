"""RgbLoader and ResizeImage, including the original's documented resize examples."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

from delf_tf import utils
from delf_tf.protos import delf_config_pb2


def _config(max_size=-1, min_size=-1, square=False):
    return delf_config_pb2.DelfConfig(
        max_image_size=max_size, min_image_size=min_size, use_square_images=square)


def _image(height, width):
    return np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)


@pytest.mark.parametrize(
    "size,config,factor,expected_shape,expected_scales",
    [
        ((4, 2), _config(max_size=2), 1.0, (2, 1, 3), [0.5, 0.5]),
        ((4, 2), _config(max_size=2, square=True), 1.0, (2, 2, 3), [0.5, 1.0]),
        ((4, 2), _config(min_size=8), 1.0, (8, 4, 3), [2.0, 2.0]),
        ((4, 2), _config(square=True), 1.0, (4, 4, 3), [1.0, 2.0]),
        ((4, 2), _config(max_size=2), 2.0, (4, 2, 3), [1.0, 1.0]),
        ((3, 2), _config(max_size=2, min_size=2), 1.0, (2, 1, 3), [2 / 3, 0.5]),
    ],
)
def test_spec_examples(size, config, factor, expected_shape, expected_scales):
    resized, scales = utils.ResizeImage(_image(*size), config, resize_factor=factor)
    assert resized.shape == expected_shape
    assert resized.dtype == np.uint8
    np.testing.assert_allclose(scales, expected_scales, rtol=1e-4)


def test_unchanged_image_is_returned_as_is():
    image = _image(4, 2)
    resized, scales = utils.ResizeImage(image, _config())
    assert resized is image
    np.testing.assert_array_equal(scales, [1.0, 1.0])


def test_real_photo_resized_with_bilinear():
    photo = data.astronaut()  # 512x512
    resized, scales = utils.ResizeImage(photo, _config(max_size=100))
    assert resized.shape == (100, 100, 3)
    expected = np.asarray(Image.fromarray(photo).resize((100, 100), Image.BILINEAR))
    np.testing.assert_array_equal(resized, expected)
    np.testing.assert_allclose(scales, [100 / 512, 100 / 512])


@pytest.mark.parametrize(
    "image,factor",
    [(np.zeros([4, 4], np.uint8), 1.0), (np.zeros([4, 4, 4], np.uint8), 1.0),
     (np.zeros([4, 4, 3], np.uint8), -1.0)],
)
def test_bad_inputs(image, factor):
    with pytest.raises(ValueError):
        utils.ResizeImage(image, _config(max_size=2), resize_factor=factor)


@pytest.mark.parametrize("mode,ext", [("L", "png"), ("RGBA", "png"), ("P", "png"),
                                      ("CMYK", "jpg"), ("RGB", "jpg"), ("LA", "png")])
def test_loader_converts_every_mode_to_rgb(tmp_path, mode, ext):
    photo = Image.fromarray(data.chelsea()).convert(mode)
    path = str(tmp_path / f"img.{ext}")
    photo.save(path)
    loaded = utils.RgbLoader(path)
    assert loaded.mode == "RGB"
    assert loaded.size == photo.size


def test_loader_rescales_16_bit(tmp_path):
    values = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    path = str(tmp_path / "deep.png")
    Image.fromarray(values).save(path)
    loaded = np.asarray(utils.RgbLoader(path))
    assert loaded.shape == (32, 64, 3)
    assert loaded.max() == 255 and loaded.min() == 0
    assert 100 < loaded[16, 32, 0] < 160  # mid-range value stays mid-range


def test_loader_errors_name_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    with pytest.raises(ValueError, match="notes.jpg"):
        utils.RgbLoader(str(path))
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        utils.RgbLoader(str(tmp_path / "missing.jpg"))


@pytest.mark.parametrize("width, height", [(30000, 30000), (10000, 9000)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, width, height):
    # 900 MP is above PIL's own error limit, 90 MP only above its warning limit:
    # both are refused from the header, naming the file.
    from tests.conftest import write_bomb_png

    path = tmp_path / "bomb.png"
    write_bomb_png(path, width, height)
    with pytest.raises(ValueError, match=f"Refusing to decode {path}.*pixels"):
        utils.RgbLoader(str(path))


def test_image_pixel_limit_follows_pil_setting(tmp_path, monkeypatch):
    Image.fromarray(np.zeros([20, 30, 3], np.uint8)).save(tmp_path / "small.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ValueError, match="600 pixels is more than the limit of 500"):
        utils.RgbLoader(str(tmp_path / "small.png"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert utils.RgbLoader(str(tmp_path / "small.png")).size == (30, 20)

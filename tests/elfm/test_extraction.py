"""ELFM extraction from a tiny DELG model: shapes, determinism, SavedModel round trip."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

from delf_tf.elfm import extraction
from delf_tf.elfm import functional as F
from delf_tf.models import Delg, save_weights


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = Delg(backbone="resnet_tiny")
    model.build_for_input(64)
    prefix = str(tmp_path_factory.mktemp("elfm") / "delf_weights")
    save_weights(model, prefix)
    return prefix


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.fromarray(data.astronaut()).resize((224, 160)))


def test_extract_checkpoint_and_saved_model_agree(checkpoint, photo, tmp_path):
    extractor = extraction.ElfmExtractor(checkpoint, num_features=60, num_clusters=10)
    result, outputs, _resized = extractor(photo)
    dim = result.dim
    assert result.num_clusters == 10
    assert result.codes.shape == (10, 8 * F.num_words(dim))
    assert outputs["features"].shape[0] <= 60
    norms = np.linalg.norm(outputs["features"], axis=1)
    np.testing.assert_allclose(outputs["scores"][:, 0], norms, rtol=1e-5)
    assert list(norms) == sorted(norms, reverse=True)
    # The whitened, L2-normalised representatives are what the bits binarise.
    np.testing.assert_array_equal(F.unpack_codes(result.codes, dim), result.representatives > 0)
    again, _, _ = extractor(photo)
    np.testing.assert_array_equal(again.codes, result.codes)

    export_path = str(tmp_path / "elfm_export")
    extraction.ExportElfmModel(checkpoint, export_path)
    loaded = extraction.ElfmExtractor(export_path, num_features=60, num_clusters=10)
    from_saved, _, _ = loaded(photo)
    np.testing.assert_array_equal(from_saved.codes, result.codes)


def test_tiny_image_gives_few_or_no_clusters(checkpoint):
    extractor = extraction.ElfmExtractor(checkpoint, num_clusters=10, scales=[1.0])
    result, outputs, _ = extractor(np.full([40, 40, 3], 128, np.uint8))
    # 40 px at stride 32: at most 2 x 2 cells, so fewer than K clusters.
    assert result.num_clusters == len(outputs["features"]) <= 4

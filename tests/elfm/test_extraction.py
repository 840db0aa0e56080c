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


def test_dataset_workflow(checkpoint, tmp_path):
    """Extract (query + index) -> index file -> Revisited metrics, binary and float; a query
    identical to an index image ranks it first with S = 1."""
    import os

    from delf_tf.elfm import batch, descriptor, visualization
    from delf_tf.elfm import index as elfm_index
    from delf_tf.retrieval import dataset

    images = tmp_path / "images"
    images.mkdir()
    photos = {"i0": data.astronaut(), "i1": data.coffee(), "i2": data.chelsea(),
              "q0": data.astronaut()}
    for name, pixels in photos.items():
        Image.fromarray(pixels).resize((128, 128)).save(images / f"{name}.jpg", quality=95)
    gnd = [{"bbx": [0, 0, 128, 128], "easy": [1], "hard": [], "junk": []}]
    dataset_path = str(tmp_path / "gnd.mat")
    dataset.WriteDatasetFile(dataset_path, ["i0", "i1", "i2"], ["q0"], gnd)
    options = dict(num_features=40, num_clusters=4, scales=[0.7071, 1.0, 1.4142])
    for image_set in ("query", "index"):
        failures = batch.ExtractElfmFeatures(checkpoint, dataset_path, str(images), image_set,
                                             str(tmp_path / image_set), save_float=True,
                                             **options)
        assert failures == []
    # A rerun skips existing outputs; --overwrite replaces them; the source is recorded.
    assert (tmp_path / "index" / "extraction_source.json").is_file()
    done = tmp_path / "index" / "i0.elfm"
    for overwrite, rewritten in ((False, False), (True, True)):
        os.utime(done, (0, 0))
        batch.ExtractElfmFeatures(checkpoint, dataset_path, str(images), "index",
                                  str(tmp_path / "index"), save_float=True,
                                  overwrite=overwrite, **options)
        assert (done.stat().st_mtime > 0) == rewritten
    codes, dim = descriptor.ReadCodesFromFile(str(tmp_path / "index" / "i0.elfm"))
    assert 1 <= len(codes) <= 4
    index_path = str(tmp_path / "db.elfmidx")
    index = batch.BuildElfmIndex(str(tmp_path / "index"), ["i0", "i1", "i2"], index_path)
    assert os.path.getsize(index_path) <= 3 * (4 * dim // 8 + 1 + 8) + 64
    query_codes, _ = descriptor.ReadCodesFromFile(str(tmp_path / "query" / "q0.elfm"))
    ids, scores = index.search([query_codes])[0]
    assert ids[0] == 0 and scores[0] == 1.0
    for use_float in (False, True):
        out = str(tmp_path / f"results_{use_float}")
        mean_ap = batch.EvaluateElfm(dataset_path, str(tmp_path / "query"), out,
                                     index_path=None if use_float else index_path,
                                     index_features_dir=str(tmp_path / "index"),
                                     use_float=use_float, log=lambda _: None)
        assert mean_ap["medium"] == 1.0
        assert os.path.isfile(os.path.join(out, "metrics.txt"))
    assert elfm_index.ElfmIndex.load(index_path).names == ["i0", "i1", "i2"]

    extractor = extraction.ElfmExtractor(checkpoint, **options)
    picture_path = str(tmp_path / "map.png")
    score = visualization.save_match_map(extractor, photos["q0"][:200], photos["i1"],
                                         picture_path)
    assert 0.0 <= score <= 1.0
    with Image.open(picture_path) as picture:
        assert picture.size[1] > 2 * 100


def test_cluster_contributions_sum_to_score():
    from delf_tf.elfm import visualization

    rng = np.random.default_rng(0)
    query = F.pack_codes(rng.random([3, 64]) > 0.5)
    target = F.pack_codes(rng.random([5, 64]) > 0.5)
    query_share, target_share = visualization.cluster_contributions(query, target, 64)
    score = F.elfm_similarity(query, target, 64)
    assert query_share.sum() == pytest.approx(score)
    assert target_share.sum() == pytest.approx(score)

"""The extract_features jobs: DELF over an image list, DELG over a Revisited
dataset (query crops), skip-existing, shards, unreadable images, the tool's exit."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from delf_tf import config as config_lib
from delf_tf.extraction import batch, extractor, provenance
from delf_tf.io import datum_io, feature_io
from delf_tf.protos import delf_config_pb2
from delf_tf.retrieval import dataset

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def outputs(directory) -> list[str]:
    """The feature files in `directory`, without the record of their model and config."""
    return sorted(name for name in os.listdir(directory) if name != provenance.SIDECAR_NAME)


def write_config(path, model_path, use_global=False, max_image_size=-1):
    config = delf_config_pb2.DelfConfig(model_path=model_path, image_scales=[0.7071, 1.0],
                                        use_local_features=True,
                                        use_global_features=use_global,
                                        max_image_size=max_image_size)
    config.delf_local_config.use_pca = False
    config.delf_local_config.score_threshold = 0.0
    config.delf_local_config.max_feature_num = 50
    config.delf_global_config.use_pca = False
    config_lib.WriteConfig(str(path), config)
    return config


def test_shard_partitions_by_position():
    items = list("abcdefg")
    assert batch.shard(items, 3, 1) == [(1, "b"), (4, "e")]
    assert sorted(x for k in range(3) for _, x in batch.shard(items, 3, k)) == items
    with pytest.raises(ValueError, match="shard_index"):
        batch.shard(items, 2, 2)
    with pytest.raises(ValueError, match="num_shards"):
        batch.shard(items, 0, 0)


def test_crop_query_image_and_resize_factor():
    image = Image.new("RGB", (100, 50))
    cropped, factor = batch.crop_query_image(image, [10.4, 5.6, 70.2, 50.0])
    assert cropped.size == (60, 44)  # box rounded to (10, 6, 70, 50)
    assert factor == pytest.approx(60 / 100)
    with pytest.raises(ValueError, match="invalid query box"):
        batch.crop_query_image(image, [10, 10, 5, 20])
    with pytest.raises(ValueError, match="invalid query box"):
        batch.crop_query_image(image, [10, 10, np.nan, 20])


def test_query_box_is_clipped_to_the_image_never_padded():
    pixels = np.arange(50 * 100 * 3, dtype=np.uint8).reshape(50, 100, 3) | 1  # no black pixel
    image = Image.fromarray(pixels)
    cropped, factor = batch.crop_query_image(image, [-20, 30, 130, 80])
    assert cropped.size == (100, 20)
    np.testing.assert_array_equal(np.asarray(cropped), pixels[30:50])
    assert factor == 1.0
    for box in ([100, 0, 140, 50], [-30, -10, 0, 40], [10, 50, 20, 60]):
        with pytest.raises(ValueError, match="query box .* lies outside the 100x50 image"):
            batch.crop_query_image(image, box)


@pytest.fixture
def image_files(tmp_path, make_image):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    Image.fromarray(make_image(70, 90, seed=1)).save(images_dir / "a.png")
    Image.fromarray(make_image(64, 48, seed=2)).convert("L").save(images_dir / "b.jpg")
    (images_dir / "bad.jpg").write_bytes(b"not a jpeg")
    return images_dir


def test_delf_list_extraction(tmp_path, delf_export, image_files):
    config = write_config(tmp_path / "config.pbtxt", delf_export)
    # Held for the whole test: the jobs' extractors then share its loaded model.
    extract = extractor.MakeExtractor(config)
    names = ["a.png", "bad.jpg", "b.jpg", "missing.jpg"]
    (tmp_path / "list.txt").write_text("".join(f"{image_files / n}\n" for n in names))
    out = tmp_path / "features"

    failures = batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"),
                                         str(tmp_path / "list.txt"), str(out))
    assert failures == [str(image_files / "bad.jpg"), str(image_files / "missing.jpg")]
    assert outputs(out) == ["a.delf", "b.delf"]
    locations, _, descriptors, attention, _ = feature_io.ReadFromFile(str(out / "a.delf"))
    expected = extract(np.asarray(Image.open(image_files / "a.png")))
    np.testing.assert_allclose(descriptors, expected["local_features"]["descriptors"], rtol=1e-6)
    np.testing.assert_allclose(locations, expected["local_features"]["locations"], rtol=1e-6)
    np.testing.assert_allclose(attention, expected["local_features"]["attention"], rtol=1e-6)

    # Existing outputs are skipped, not rewritten.
    stamp = os.stat(out / "a.delf").st_mtime_ns
    os.utime(out / "a.delf", ns=(stamp - 10**9, stamp - 10**9))
    batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "list.txt"),
                              str(out))
    assert os.stat(out / "a.delf").st_mtime_ns == stamp - 10**9

    # Shard 1 of 2 takes positions 1 and 3.
    failures = batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"),
                                         str(tmp_path / "list.txt"), str(tmp_path / "shard"),
                                         num_shards=2, shard_index=1)
    assert failures == [str(image_files / "bad.jpg"), str(image_files / "missing.jpg")]
    assert outputs(tmp_path / "shard") == []


def test_delg_dataset_extraction_crops_queries(tmp_path, delg_export, make_image):
    images_dir = tmp_path / "jpg"
    images_dir.mkdir()
    for name, seed in (("q0", 1), ("i0", 2)):
        Image.fromarray(make_image(96, 128, seed=seed)).save(images_dir / f"{name}.jpg",
                                                             quality=95)
    gnd = [{"bbx": [20.3, 10.0, 100.0, 80.0], "easy": [1], "hard": [], "junk": []}]
    dataset.WriteDatasetFile(str(tmp_path / "gnd.mat"), ["i0", "i1"], ["q0"], gnd)
    config = write_config(tmp_path / "config.pbtxt", delg_export, use_global=True,
                          max_image_size=64)
    extract = extractor.MakeExtractor(config)  # shared with the jobs (loaded once)

    out = tmp_path / "query"
    failures = batch.ExtractDelgFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "gnd.mat"),
                                         str(images_dir), "query", str(out))
    assert failures == []
    assert outputs(out) == ["q0.delg_global", "q0.delg_local"]
    full = Image.open(images_dir / "q0.jpg").convert("RGB")
    cropped = np.asarray(full.crop((20, 10, 100, 80)))
    # The 80x70 crop of a 128-wide image is resized with max_image_size 64 * 80/128 = 40.
    expected = extract(cropped, resize_factor=80 / 128)
    locations, _, descriptors, _, _ = feature_io.ReadFromFile(str(out / "q0.delg_local"))
    np.testing.assert_allclose(descriptors, expected["local_features"]["descriptors"], rtol=1e-6)
    np.testing.assert_allclose(locations, expected["local_features"]["locations"], rtol=1e-5)
    np.testing.assert_allclose(datum_io.ReadFromFile(str(out / "q0.delg_global")),
                               expected["global_descriptor"], rtol=1e-6)
    assert locations[:, 0].max() < 70 and locations[:, 1].max() < 80  # crop coordinates

    out = tmp_path / "index"
    failures = batch.ExtractDelgFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "gnd.mat"),
                                         str(images_dir), "index", str(out),
                                         binarize_local_descriptors=True)
    assert failures == ["i1"]
    assert outputs(out) == ["i0.delg_global", "i0.delg_local"]
    descriptors = feature_io.ReadFromFile(str(out / "i0.delg_local"))[2]
    assert descriptors.dtype == np.uint8 and descriptors.shape[1] == 128 // 8
    with pytest.raises(ValueError, match="image_set"):
        batch.ExtractDelgFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "gnd.mat"),
                                  str(images_dir), "train", str(out))


def test_query_boxes_outside_the_image_clipped_or_named(tmp_path, delg_export, make_image,
                                                       caplog):
    images_dir = tmp_path / "jpg"
    images_dir.mkdir()
    for name, seed in (("q0", 1), ("q1", 2)):
        Image.fromarray(make_image(96, 128, seed=seed)).save(images_dir / f"{name}.png")
    gnd = [{"bbx": [60.0, -30.0, 200.0, 70.0], "easy": [1], "hard": [], "junk": []},
           {"bbx": [130.0, 10.0, 180.0, 60.0], "easy": [1], "hard": [], "junk": []}]
    dataset.WriteDatasetFile(str(tmp_path / "gnd.mat"), ["i0"], ["q0", "q1"], gnd)
    config = write_config(tmp_path / "config.pbtxt", delg_export, use_global=True)
    out = tmp_path / "query"
    failures = batch.ExtractDelgFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "gnd.mat"),
                                         str(images_dir), "query", str(out),
                                         image_extension=".png")
    assert failures == ["q1"]
    assert "q1: query box [130.0, 10.0, 180.0, 60.0] lies outside the 128x96 image" in caplog.text
    assert outputs(out) == ["q0.delg_global", "q0.delg_local"]
    # q0 is its box's part inside the image (68 x 70), not a black-padded 140 x 100.
    inside = np.asarray(Image.open(images_dir / "q0.png").convert("RGB"))[0:70, 60:128]
    expected = extractor.MakeExtractor(config)(inside, resize_factor=70 / 128)
    np.testing.assert_allclose(datum_io.ReadFromFile(str(out / "q0.delg_global")),
                               expected["global_descriptor"], rtol=1e-6)


def test_extract_features_tool_exits_nonzero_listing_bad_images(tmp_path, delf_export,
                                                                image_files):
    write_config(tmp_path / "config.pbtxt", delf_export)
    (tmp_path / "list.txt").write_text(f"{image_files / 'bad.jpg'}\n{image_files / 'a.png'}\n")
    result = subprocess.run(
            [sys.executable, os.path.join(REPO, "tools", "extract_features.py"),
             f"--config_path={tmp_path / 'config.pbtxt'}",
             f"--list_images_path={tmp_path / 'list.txt'}", f"--output_dir={tmp_path / 'out'}"],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1
    assert "1 image(s) failed" in result.stderr
    assert str(image_files / "bad.jpg") in result.stderr
    assert outputs(tmp_path / "out") == ["a.delf"]


def test_an_image_failing_inside_extraction_is_logged_and_the_job_goes_on(
        tmp_path, delf_export, image_files, monkeypatch, caplog):
    write_config(tmp_path / "config.pbtxt", delf_export)
    Image.fromarray(np.full([10, 10, 3], 90, np.uint8)).save(image_files / "tiny.png")
    real_make = extractor.MakeExtractor

    def make_failing_on_wide_images(config, **kwargs):
        extract = real_make(config, **kwargs)

        def failing(image, **kw):
            if np.asarray(image).shape[1] == 90:
                raise RuntimeError("kernel failure")
            return extract(image, **kw)
        return failing

    monkeypatch.setattr(batch.extractor_lib, "MakeExtractor", make_failing_on_wide_images)
    names = ["a.png", "tiny.png", "b.jpg"]  # a.png is 90 wide
    (tmp_path / "list.txt").write_text("".join(f"{image_files / n}\n" for n in names))
    failures = batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"),
                                         str(tmp_path / "list.txt"), str(tmp_path / "out"))
    assert failures == [str(image_files / "a.png")]
    assert outputs(tmp_path / "out") == ["b.delf", "tiny.delf"]
    assert "kernel failure" in caplog.text

    # When every one of the first images fails, the model is at fault: the job stops.
    (tmp_path / "list.txt").write_text(f"{image_files / 'a.png'}\n" * 6)
    with pytest.raises(RuntimeError, match="first 5 images all failed"):
        batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "list.txt"),
                                  str(tmp_path / "out2"))


def test_invalid_shards_are_refused_before_the_model_loads(tmp_path, image_files):
    write_config(tmp_path / "config.pbtxt", str(tmp_path / "no_model"))
    (tmp_path / "list.txt").write_text(f"{image_files / 'a.png'}\n")
    with pytest.raises(ValueError, match="num_shards"):
        batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "list.txt"),
                                  str(tmp_path / "out"), num_shards=0)
    assert not (tmp_path / "out").exists()


def test_same_basename_in_two_directories_stops_before_writing(tmp_path, image_files):
    write_config(tmp_path / "config.pbtxt", str(tmp_path / "no_model"))
    other = tmp_path / "other"
    other.mkdir()
    Image.open(image_files / "a.png").save(other / "a.jpg")
    (tmp_path / "list.txt").write_text(
            f"{image_files / 'a.png'}\n{image_files / 'b.jpg'}\n{other / 'a.jpg'}\n")
    with pytest.raises(ValueError, match=r"a\.png and .*other/a\.jpg would both be written"):
        batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "list.txt"),
                                  str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_existing_outputs(tmp_path, delf_export, image_files, caplog):
    write_config(tmp_path / "config.pbtxt", delf_export)
    (tmp_path / "list.txt").write_text(f"{image_files / 'a.png'}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.delf").write_bytes(b"features of another model")

    def run(**kwargs):
        return batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"),
                                         str(tmp_path / "list.txt"), str(out), **kwargs)

    assert run() == []
    assert (out / "a.delf").read_bytes() == b"features of another model"
    assert "1 image(s) skipped because their outputs already exist" in caplog.text
    assert run(overwrite=True) == []
    assert len(feature_io.ReadFromFile(str(out / "a.delf"))[0]) > 0
    assert outputs(out) == ["a.delf"]  # no temporary file left


def test_kill_9_leaves_no_truncated_file_and_a_rerun_completes_the_set(tmp_path, delf_export,
                                                                       make_image):
    import signal
    import time

    write_config(tmp_path / "config.pbtxt", delf_export)
    images = tmp_path / "images"
    images.mkdir()
    names = [f"im{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        Image.fromarray(make_image(64, 80, seed=i)).save(images / f"{name}.png")
    (tmp_path / "list.txt").write_text("".join(f"{images / n}.png\n" for n in names))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".im05.delf.k1ll3d00.tmp").write_bytes(b"half a file")  # an earlier kill
    command = [sys.executable, os.path.join(REPO, "tools", "extract_features.py"),
               f"--config_path={tmp_path / 'config.pbtxt'}",
               f"--list_images_path={tmp_path / 'list.txt'}", f"--output_dir={out}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (len([f for f in os.listdir(out) if f.endswith(".delf")]) < 3
           and time.monotonic() < deadline and process.poll() is None):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = [f for f in os.listdir(out) if f.endswith(".delf")]
    assert 3 <= len(written) < len(names)
    for name in written:  # every file there is complete
        feature_io.ReadFromFile(str(out / name))

    assert batch.ExtractDelfFeatures(str(tmp_path / "config.pbtxt"), str(tmp_path / "list.txt"),
                                     str(out)) == []
    assert outputs(out) == sorted(f"{n}.delf" for n in names)  # no .tmp left


def test_rerun_with_another_model_or_config_warns_naming_both(tmp_path, delf_export,
                                                               image_files, caplog):
    (tmp_path / "list.txt").write_text(f"{image_files / 'a.png'}\n")
    out = tmp_path / "out"
    write_config(tmp_path / "a.pbtxt", delf_export)
    config_b = write_config(tmp_path / "b.pbtxt", delf_export)
    config_b.delf_local_config.max_feature_num = 20
    config_lib.WriteConfig(str(tmp_path / "b.pbtxt"), config_b)

    def run(config_name, **kwargs):
        caplog.clear()
        assert batch.ExtractDelfFeatures(str(tmp_path / config_name),
                                         str(tmp_path / "list.txt"), str(out), **kwargs) == []
        return [r.getMessage() for r in caplog.records if "were extracted with" in r.getMessage()]

    assert run("a.pbtxt") == [] and run("a.pbtxt") == []
    features_a = len(feature_io.ReadFromFile(str(out / "a.delf"))[0])
    assert features_a > 20
    sidecar = out / provenance.SIDECAR_NAME
    (source_a,) = json.loads(sidecar.read_text())["sources"]
    assert source_a["model_path"] == os.path.abspath(delf_export) and source_a["model_fingerprint"]
    (warning,) = run("b.pbtxt")
    assert f"config {tmp_path / 'a.pbtxt'} (sha256 {source_a['config_sha256']})" in warning
    assert f"this run uses model {os.path.abspath(delf_export)}" in warning
    assert f"config {tmp_path / 'b.pbtxt'}" in warning and "pass --overwrite" in warning
    assert len(feature_io.ReadFromFile(str(out / "a.delf"))[0]) == features_a  # a's, kept
    assert len(json.loads(sidecar.read_text())["sources"]) == 2  # a's and b's files now
    (warning,) = run("b.pbtxt", overwrite=True)
    assert "with --overwrite, replaces them" in warning
    assert len(json.loads(sidecar.read_text())["sources"]) == 1
    assert len(feature_io.ReadFromFile(str(out / "a.delf"))[0]) <= 20
    assert run("b.pbtxt") == []

    # Another model at the same path (a re-export) is another source too.
    import shutil

    shutil.copytree(delf_export, tmp_path / "model")
    before = provenance.describe_source(str(tmp_path / "model"), "c.pbtxt", "")
    fingerprint = tmp_path / "model" / "fingerprint.pb"
    index = tmp_path / "model" / "variables" / "variables.index"
    changed = fingerprint if fingerprint.exists() else index
    changed.write_bytes(changed.read_bytes() + b"\0")
    after = provenance.describe_source(str(tmp_path / "model"), "c.pbtxt", "")
    assert before["model_fingerprint"] != after["model_fingerprint"]


def test_extraction_params_name_one_job_and_one_image_source(tmp_path):
    from delf_tf.extraction import per_image

    images = tmp_path / "images.txt"
    images.write_text("/photos/a.jpg\n/photos/b.png\n")
    params = per_image.ExtractionParams(method="delf", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--method=delf needs --delf_config_path"):
        params.job()
    with pytest.raises(ValueError, match="--method=elfm needs --model_path"):
        per_image.ExtractionParams(method="elfm", output_dir=str(tmp_path)).job()
    assert [(t.name, t.image_path) for t in params.tasks(str(images))] == [
        ("a", "/photos/a.jpg"), ("b", "/photos/b.png")]
    with pytest.raises(ValueError, match="exactly one of"):
        params.tasks(str(images), "gnd.mat")
    with pytest.raises(ValueError, match="--images_dir is required"):
        params.tasks(dataset_file_path="gnd.mat")

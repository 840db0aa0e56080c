"""Tests of the embedded demo data set generator."""

import csv
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from delf_tf.data import demo
from delf_tf.retrieval import dataset as revisited

_SMALL = demo.DemoConfig(num_landmarks=3, image_size=96, train_per_landmark=4,
                         noisy_per_landmark=1, queries_per_landmark=2, easy_per_landmark=2,
                         hard_per_landmark=1, junk_per_landmark=1, num_distractors=3, seed=7)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo"))
    return demo.GenerateDemoDataset(root, _SMALL)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_train_csv_lists_every_training_image_with_its_landmark(small_set):
    rows = _read_csv(small_set.train_csv_path)
    assert rows[0] == ["id", "url", "landmark_id"]
    assert len(rows) - 1 == _SMALL.num_landmarks * _SMALL.train_per_landmark
    ids = [r[0] for r in rows[1:]]
    assert len(set(ids)) == len(ids)
    assert sorted(os.listdir(small_set.train_dir)) == sorted(i + ".jpg" for i in ids)
    per_label = {}
    for image_id, _, label in rows[1:]:
        per_label.setdefault(int(label), []).append(image_id)
    assert sorted(per_label) == small_set.landmark_ids
    assert all(len(v) == _SMALL.train_per_landmark for v in per_label.values())


def test_train_clean_csv_is_the_clean_subset_of_train_csv(small_set):
    rows = _read_csv(small_set.train_clean_csv_path)
    assert rows[0] == ["landmark_id", "images"]
    train = {r[0]: int(r[2]) for r in _read_csv(small_set.train_csv_path)[1:]}
    clean_total = 0
    for label, images in rows[1:]:
        ids = images.split(" ")
        assert len(ids) == _SMALL.train_per_landmark - _SMALL.noisy_per_landmark
        assert all(train[i] == int(label) for i in ids)
        clean_total += len(ids)
    assert clean_total < len(train)


def test_images_are_small_rgb_jpegs(small_set):
    names = ([os.path.join(small_set.train_dir, n) for n in os.listdir(small_set.train_dir)] +
             [os.path.join(small_set.images_dir, n + ".jpg")
              for n in small_set.imlist + small_set.qimlist])
    for path in names:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert max(image.size) == _SMALL.image_size


def test_ground_truth_file_round_trips_and_matches_the_rendering(small_set):
    qimlist, imlist, gnd = revisited.ReadDatasetFile(small_set.dataset_file_path)
    assert qimlist == small_set.qimlist and imlist == small_set.imlist
    assert len(imlist) == _SMALL.num_landmarks * 4 + _SMALL.num_distractors
    assert len(qimlist) == _SMALL.num_landmarks * _SMALL.queries_per_landmark
    for query, record, expected in zip(qimlist, gnd, small_set.gnd):
        landmark = query.rsplit("_query_", 1)[0]
        for kind, count in (("easy", 2), ("hard", 1), ("junk", 1)):
            np.testing.assert_array_equal(record[kind], expected[kind])
            assert len(record[kind]) == count
            assert all(imlist[i].startswith(landmark + "_") for i in record[kind])
        # Every index image of the landmark is in exactly one list; distractors in none.
        listed = np.concatenate([record["easy"], record["hard"], record["junk"]])
        assert sorted(listed) == [i for i, n in enumerate(imlist)
                                  if n.rsplit("_", 1)[0] == landmark]
        with Image.open(os.path.join(small_set.images_dir, query + ".jpg")) as image:
            w, h = image.size
        x1, y1, x2, y2 = record["bbx"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert (x2 - x1) * (y2 - y1) >= 0.15 * w * h


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    config = dataclasses.replace(_SMALL, num_landmarks=1, train_per_landmark=2,
                                 noisy_per_landmark=0, queries_per_landmark=1, num_distractors=1)
    first = demo.GenerateDemoDataset(str(tmp_path / "a"), config)
    second = demo.GenerateDemoDataset(str(tmp_path / "b"), config)
    other = demo.GenerateDemoDataset(str(tmp_path / "c"), dataclasses.replace(config, seed=8))
    # The .mat header carries a creation time, so it is compared by content.
    first_gnd = revisited.ReadDatasetFile(first.dataset_file_path)
    second_gnd = revisited.ReadDatasetFile(second.dataset_file_path)
    assert first_gnd[:2] == second_gnd[:2]
    for a, b in zip(first_gnd[2], second_gnd[2]):
        for key in ("easy", "hard", "junk", "bbx"):
            np.testing.assert_array_equal(a[key], b[key])
    for name in ["train.csv", "train_clean.csv"] + [
            os.path.join("jpg", n + ".jpg") for n in first.imlist + first.qimlist]:
        with open(os.path.join(first.root, name), "rb") as f1, \
                open(os.path.join(second.root, name), "rb") as f2:
            assert f1.read() == f2.read(), name
    query = os.path.join("jpg", first.qimlist[0] + ".jpg")
    with open(os.path.join(first.root, query), "rb") as f1, \
            open(os.path.join(other.root, query), "rb") as f3:
        assert f1.read() != f3.read()


def test_landmark_is_where_the_box_says():
    # Without clutter, occlusion, noise or lighting changes the box must frame
    # pixels that come from the landmark patch (a flat red square here).
    patch = np.zeros((64, 64, 3), np.uint8)
    patch[..., 0] = 255
    view = dataclasses.replace(demo._QUERY_VIEW, clutter=(0, 0), photometric=0.0, blur=0.0)
    materials = demo._Materials()
    for k in range(5):
        image, box = demo.render_scene(np.random.default_rng(k), materials, patch, 128, view)
        x1, y1, x2, y2 = box.astype(int)
        inner = image[y1 + 4:y2 - 4, x1 + 4:x2 - 4].astype(int)
        # A perspective quad does not fill its box; its centre must be the patch.
        cy, cx = inner.shape[0] // 2, inner.shape[1] // 2
        centre = inner[cy - 3:cy + 3, cx - 3:cx + 3]
        assert (centre[..., 0] > 200).all() and (centre[..., 1:] < 60).all()


def test_junk_views_show_little_of_the_landmark():
    rng = np.random.default_rng(0)
    quad = demo._landmark_quad(rng, (100, 100), (120, 160), demo._JUNK)
    for _ in range(10):
        placed = demo._place(rng, quad, 120, 160, demo._JUNK.visible)
        assert 0.1 <= demo._visible_fraction(placed, 120, 160) <= 0.25
    placed = demo._place(rng, quad, 120, 160, (1.0, 1.0))
    assert demo._visible_fraction(placed, 120, 160) == pytest.approx(1.0, abs=1e-3)


def test_distractors_have_no_box():
    image, box = demo.render_scene(np.random.default_rng(0), demo._Materials(), None, 80, None)
    assert box is None and image.dtype == np.uint8 and max(image.shape[:2]) == 80


def test_landmarks_come_from_bundled_photos():
    patches = demo.load_landmark_patches(len(demo.LANDMARK_SOURCES))
    assert list(patches) == list(demo.LANDMARK_SOURCES)
    for patch in patches.values():
        assert patch.dtype == np.uint8 and patch.shape[2] == 3 and max(patch.shape[:2]) == 256
        assert patch.std() > 10  # real texture, not a blank crop


@pytest.mark.parametrize("field,value", [("num_landmarks", 0), ("num_landmarks", 99),
                                         ("image_size", 8), ("noisy_per_landmark", 4),
                                         ("queries_per_landmark", 0), ("num_distractors", -1)])
def test_invalid_config_is_rejected(field, value, tmp_path):
    config = dataclasses.replace(_SMALL, **{field: value})
    with pytest.raises(ValueError, match=field):
        demo.GenerateDemoDataset(str(tmp_path), config)


def test_the_num_landmarks_help_states_how_many_landmarks_there_are():
    from delf_tf.tools import config_flags

    help_text = config_flags.attribute_docs(demo.DemoConfig)["num_landmarks"]
    assert f"(at most {len(demo.LANDMARK_SOURCES)})" in help_text

"""Tests for delf_tf.data.builder on a generated GLDv2-style folder."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delf_tf.data import builder

# landmark_id -> image ids; the landmark ids are sparse on purpose (relabelling).
_TRAIN = {
        107: ["a107x0", "a107x1", "a107x2", "a107x3", "a107x4", "a107x5", "a107x6"],
        5: ["b005x0", "b005x1", "b005x2", "b005x3", "b005x4"],
        42: ["c042x0", "c042x1"],
}
_TEST = ["t0", "t1", "t2"]
_GRAY_ID, _CMYK_ID = "b005x1", "a107x3"
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_jpeg(path: str, rng: np.random.Generator, mode: str = "RGB") -> None:
    height, width = rng.integers(20, 40, size=2)
    channels = {"RGB": 3, "L": 1, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, "JPEG")


@pytest.fixture(scope="module")
def gld_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("gld")
    rng = np.random.default_rng(0)
    os.makedirs(root / "train")
    os.makedirs(root / "test")
    for ids in _TRAIN.values():
        for image_id in ids:
            mode = {_GRAY_ID: "L", _CMYK_ID: "CMYK"}.get(image_id, "RGB")
            _write_jpeg(str(root / "train" / f"{image_id}.jpg"), rng, mode)
    for image_id in _TEST:
        _write_jpeg(str(root / "test" / f"{image_id}.jpg"), rng)
    with open(root / "train.csv", "w") as f:
        f.write("id,url,landmark_id\n")
        for label, ids in _TRAIN.items():
            f.writelines(f"{image_id},http://x/{image_id}.jpg,{label}\n" for image_id in ids)
    with open(root / "train_clean.csv", "w") as f:
        f.write("landmark_id,images\n")
        f.writelines(f"{label},{' '.join(ids)}\n" for label, ids in _TRAIN.items())
    with open(root / "test.csv", "w") as f:
        f.write("id,url\n")
        f.writelines(f"{image_id},http://x\n" for image_id in _TEST)
    return root


def _read_records(pattern: str) -> list[dict]:
    records = []
    for path in sorted(tf.io.gfile.glob(pattern)):
        for serialized in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(serialized.numpy())
            record = {}
            for key, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                record[key] = getattr(feature, kind).value[0]
            records.append(record)
    return records


def test_clean_csv_with_splits(gld_folder, tmp_path):
    out = str(tmp_path / "out")
    counts = builder.BuildImageDataset(
            train_directory=str(gld_folder / "train"),
            test_directory=str(gld_folder / "test"),
            output_directory=out,
            train_csv_path=None,
            train_clean_csv_path=str(gld_folder / "train_clean.csv"),
            test_csv_path=str(gld_folder / "test.csv"),
            num_shards=2,
            generate_train_validation_splits=True,
            validation_split_size=0.2,
            seed=3,
            progress=lambda message: None)

    assert sorted(os.listdir(out)) == [
            "relabeling.csv",
            "test-00000-of-00002", "test-00001-of-00002",
            "train-00000-of-00002", "train-00001-of-00002",
            "validation-00000-of-00002", "validation-00001-of-00002",
    ]
    # Contiguous labels in ascending order of landmark_id: 5 -> 0, 42 -> 1, 107 -> 2.
    with open(os.path.join(out, "relabeling.csv")) as f:
        assert f.read().split() == ["new_label,old_label", "0,5", "1,42", "2,107"]
    new_label = {5: 0, 42: 1, 107: 2}
    expected_label = {image_id: new_label[old] for old, ids in _TRAIN.items() for image_id in ids}

    train = _read_records(os.path.join(out, "train-*"))
    validation = _read_records(os.path.join(out, "validation-*"))
    test = _read_records(os.path.join(out, "test-*"))
    assert counts == {"train": len(train), "validation": len(validation), "test": 3}
    # Per label: max(1, int(0.2 * n)) images go to validation.
    for old, ids in _TRAIN.items():
        in_validation = [r for r in validation if r["image/class/label"] == new_label[old]]
        assert len(in_validation) == max(1, int(0.2 * len(ids)))
    train_ids = [r["image/id"].decode() for r in train]
    validation_ids = [r["image/id"].decode() for r in validation]
    assert sorted(train_ids + validation_ids) == sorted(expected_label)
    for record in train + validation:
        image_id = record["image/id"].decode()
        assert record["image/class/label"] == expected_label[image_id]
        path = gld_folder / "train" / f"{image_id}.jpg"
        with open(path, "rb") as f:
            assert record["image/encoded"] == f.read()  # the original bytes
        assert record["image/filename"] == f"{image_id}.jpg".encode()
        assert record["image/format"] == b"JPEG"
        assert record["image/colorspace"] == b"RGB"
        assert record["image/channels"] == 3
        decoded = tf.io.decode_image(record["image/encoded"], channels=3).numpy()
        assert (record["image/height"], record["image/width"], 3) == decoded.shape
    assert sorted(r["image/id"].decode() for r in test) == _TEST
    assert all("image/class/label" not in r for r in test)


def test_split_is_seeded():
    entries = [builder.ImageEntry(f"i{k}", f"/x/i{k}.jpg", k % 3) for k in range(30)]
    first = builder.SplitTrainValidation(entries, 0.2, seed=1)
    assert first == builder.SplitTrainValidation(entries, 0.2, seed=1)
    assert first != builder.SplitTrainValidation(entries, 0.2, seed=2)
    assert [len(split) for split in first] == [24, 6]


def test_train_csv_keeps_labels(gld_folder, tmp_path):
    out = str(tmp_path / "out")
    counts = builder.BuildImageDataset(
            train_directory=str(gld_folder / "train"),
            output_directory=out,
            train_csv_path=str(gld_folder / "train.csv"),
            num_shards=3,
            progress=lambda message: None)
    assert counts == {"train": 14}
    assert sorted(os.listdir(out)) == [f"train-0000{i}-of-00003" for i in range(3)]
    labels = {r["image/id"].decode(): r["image/class/label"]
              for r in _read_records(os.path.join(out, "train-*"))}
    assert labels == {image_id: old for old, ids in _TRAIN.items() for image_id in ids}


def test_nested_gldv2_layout(tmp_path):
    os.makedirs(tmp_path / "train" / "a" / "b" / "c")
    _write_jpeg(str(tmp_path / "train" / "a" / "b" / "c" / "abcdef.jpg"), np.random.default_rng(1))
    assert builder.image_path(str(tmp_path / "train"), "abcdef").endswith("a/b/c/abcdef.jpg")


def test_original_glob_form_of_train_directory(tmp_path):
    """The original's `--train_directory=gldv2_dataset/train/*/*/*/` finds the nested images."""
    rng = np.random.default_rng(2)
    ids = ["abc001", "abd002", "xyz003"]
    for image_id in ids:
        folder = tmp_path / "train" / image_id[0] / image_id[1] / image_id[2]
        os.makedirs(folder, exist_ok=True)
        _write_jpeg(str(folder / f"{image_id}.jpg"), rng)
    with open(tmp_path / "train.csv", "w") as f:
        f.write("id,url,landmark_id\n")
        f.writelines(f"{image_id},http://x,{k}\n" for k, image_id in enumerate(ids))
    counts = builder.BuildImageDataset(
            train_directory=str(tmp_path / "train" / "*" / "*" / "*") + "/",
            output_directory=str(tmp_path / "out"), train_csv_path=str(tmp_path / "train.csv"),
            num_shards=1, progress=lambda message: None)
    assert counts == {"train": 3}
    with open(tmp_path / "train.csv", "a") as f:
        f.write("nothere,http://x,9\n")
    with pytest.raises(builder.ImageErrors, match="nothere"):
        builder.BuildImageDataset(
                train_directory=str(tmp_path / "train" / "*" / "*" / "*") + "/",
                output_directory=str(tmp_path / "out2"),
                train_csv_path=str(tmp_path / "train.csv"), num_shards=1,
                progress=lambda message: None)


def _broken_folder(gld_folder, tmp_path):
    """A copy of the CSV with one missing and one corrupt image added."""
    with open(gld_folder / "train.csv") as f:
        csv_text = f.read()
    csv_path = tmp_path / "train.csv"
    with open(csv_path, "w") as f:
        f.write(csv_text + "missing1,http://x,5\ncorrupt1,http://x,42\n")
    image_dir = tmp_path / "images"
    os.makedirs(image_dir)
    for name in os.listdir(gld_folder / "train"):
        os.symlink(gld_folder / "train" / name, image_dir / name)
    with open(image_dir / "corrupt1.jpg", "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    return str(csv_path), str(image_dir)


def test_bad_images_are_reported_by_id(gld_folder, tmp_path):
    csv_path, image_dir = _broken_folder(gld_folder, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(builder.ImageErrors) as raised:
        builder.BuildImageDataset(train_directory=image_dir, output_directory=str(out),
                                  train_csv_path=csv_path, num_shards=2,
                                  progress=lambda message: None)
    # Missing files are reported before anything is decoded.
    assert list(raised.value.errors) == ["missing1"]
    assert "missing1" in str(raised.value)
    assert os.listdir(out) == []

    os.unlink(csv_path)
    with open(csv_path, "w") as f:
        f.write("id,url,landmark_id\n")
        f.writelines(f"{image_id},http://x,{label}\n" for label, ids in _TRAIN.items()
                     for image_id in ids)
        f.write("corrupt1,http://x,42\n")
    with pytest.raises(builder.ImageErrors) as raised:
        builder.BuildImageDataset(train_directory=image_dir, output_directory=str(out),
                                  train_csv_path=csv_path, num_shards=2,
                                  progress=lambda message: None)
    assert list(raised.value.errors) == ["corrupt1"]
    assert os.listdir(out) == []  # nothing half-written


def test_skip_missing_images(gld_folder, tmp_path):
    csv_path, image_dir = _broken_folder(gld_folder, tmp_path)
    messages = []
    counts = builder.BuildImageDataset(train_directory=image_dir,
                                       output_directory=str(tmp_path / "out"),
                                       train_csv_path=csv_path, num_shards=2,
                                       skip_missing_images=True, progress=messages.append)
    assert counts == {"train": 14}
    assert any("corrupt1" in m and "missing1" in m for m in messages)


def test_command_line_tool(gld_folder, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
            [sys.executable, os.path.join(_REPO, "tools", "build_image_dataset.py"),
             f"--train_directory={gld_folder / 'train'}", f"--output_directory={out}",
             f"--train_clean_csv_path={gld_folder / 'train_clean.csv'}", "--num_shards=1",
             "--generate_train_validation_splits"],
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "validation: wrote shard 1/1" in result.stdout
    assert sorted(os.listdir(out)) == ["relabeling.csv", "train-00000-of-00001",
                                       "validation-00000-of-00001"]


def test_decompression_bomb_is_reported_not_decoded(gld_folder, tmp_path):
    from tests.conftest import write_bomb_png

    image_dir = tmp_path / "images"
    os.makedirs(image_dir)
    os.symlink(gld_folder / "train" / "a107x0.jpg", image_dir / "good.jpg")
    write_bomb_png(image_dir / "bomb.jpg")
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("id,url,landmark_id\ngood,http://x,0\nbomb,http://x,0\n")
    with pytest.raises(builder.ImageErrors) as raised:
        builder.BuildImageDataset(train_directory=str(image_dir),
                                  output_directory=str(tmp_path / "out"),
                                  train_csv_path=str(csv_path), num_shards=1,
                                  progress=lambda message: None)
    assert list(raised.value.errors) == ["bomb"]
    assert "Refusing to decode" in str(raised.value)


@pytest.mark.parametrize("csv_text, column", [
        ("id,url,landmark_id\nok,http://x,1\n../outside_secret,http://x,1\n", "train"),
        ("landmark_id,images\n1,ok /etc/passwd\n", "clean"),
        ("id,url\n../../x,http://x\n", "test"),
])
def test_csv_ids_escaping_the_image_directory_are_refused(tmp_path, csv_text, column):
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text(csv_text)
    arguments = {"train": {"train_csv_path": str(csv_path)},
                 "clean": {"train_clean_csv_path": str(csv_path)},
                 "test": {"train_csv_path": None, "test_csv_path": str(csv_path),
                          "test_directory": str(tmp_path)}}[column]
    with pytest.raises(ValueError, match=f"{csv_path}, line [23]: image id .* not a relative"):
        builder.BuildImageDataset(train_directory=str(tmp_path),
                                  output_directory=str(tmp_path / "out"), num_shards=1,
                                  progress=lambda message: None, **arguments)
    assert not (tmp_path / "out").exists()


def test_zero_usable_images_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bad.jpg").write_bytes(b"not a jpeg")
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("id,url,landmark_id\nbad,http://x,1\nmissing,http://x,1\n")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="train split has no usable image \\(2 listed"):
        builder.BuildImageDataset(train_directory=str(tmp_path / "images"),
                                  output_directory=str(out), train_csv_path=str(csv_path),
                                  num_shards=1, skip_missing_images=True,
                                  progress=lambda message: None)
    assert os.listdir(out) == []
    csv_path.write_text("id,url,landmark_id\n")
    with pytest.raises(ValueError, match="train.csv lists no images"):
        builder.BuildImageDataset(train_directory=str(tmp_path / "images"),
                                  output_directory=str(out), train_csv_path=str(csv_path),
                                  num_shards=1, progress=lambda message: None)


def test_rebuild_with_fewer_shards_removes_the_old_shards(gld_folder, tmp_path):
    out = tmp_path / "out"

    def build(num_shards):
        return builder.BuildImageDataset(
                train_directory=str(gld_folder / "train"), output_directory=str(out),
                train_csv_path=str(gld_folder / "train.csv"), num_shards=num_shards,
                progress=lambda message: None)

    build(4)
    (out / ".train-00001-of-00004.tmp").write_bytes(b"left by a killed build")
    (out / "train_notes.txt").write_text("not a shard: kept")
    build(2)
    assert sorted(os.listdir(out)) == ["train-00000-of-00002", "train-00001-of-00002",
                                       "train_notes.txt"]
    assert len(_read_records(str(out / "train-*"))) == 14


_KILLED_BUILD = r"""
import os, signal, sys
from delf_tf.data import builder

rename, renamed = os.replace, []


def replace_then_die(src, dst):
    # SIGKILL in the middle of the swap: after `kill_after` shards were renamed into place.
    if os.path.basename(dst).startswith(("train-", "validation-")):
        if len(renamed) == int(sys.argv[5]):
            os.kill(os.getpid(), signal.SIGKILL)
        renamed.append(dst)
    return rename(src, dst)


os.replace = replace_then_die
builder.BuildImageDataset(train_directory=sys.argv[1], train_csv_path=sys.argv[2],
                          output_directory=sys.argv[3], num_shards=int(sys.argv[4]),
                          generate_train_validation_splits=True, progress=print)
"""


def _ids_csv(path, ids_by_label) -> str:
    with open(path, "w") as f:
        f.write("id,url,landmark_id\n")
        for label, ids in ids_by_label.items():
            f.writelines(f"{image_id},http://x,{label}\n" for image_id in ids)
    return str(path)


@pytest.mark.parametrize("kill_after", [1, 3])
def test_kill_during_the_shard_swap_never_leaves_a_readable_mix(gld_folder, tmp_path,
                                                                kill_after):
    from delf_tf.data import gld, swap

    out = tmp_path / "out"
    old_ids = {label: ids[:len(ids) // 2 + 1] for label, ids in _TRAIN.items()}
    new_ids = {label: ids[len(ids) // 2 + 1:] or ids[:1] for label, ids in _TRAIN.items()}
    old_csv, new_csv = (_ids_csv(tmp_path / "old.csv", old_ids),
                        _ids_csv(tmp_path / "new.csv", new_ids))
    builder.BuildImageDataset(train_directory=str(gld_folder / "train"), train_csv_path=old_csv,
                              output_directory=str(out), num_shards=2,
                              generate_train_validation_splits=True, progress=lambda m: None)
    killed = subprocess.run(
            [sys.executable, "-c", _KILLED_BUILD, str(gld_folder / "train"), new_csv, str(out),
             "2", str(kill_after)],
            capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=_REPO))
    assert killed.returncode == -9, killed.stderr[-3000:]

    # On disk the shards are now a mix of both builds ...
    ids = {record["image/id"].decode() for record in _read_records(str(out / "*-of-*"))}
    assert ids & {i for v in old_ids.values() for i in v}
    assert ids & {i for v in new_ids.values() for i in v}
    # ... which no reader accepts: the error names the directory.
    for pattern in ("train*", "validation*"):
        with pytest.raises(swap.InterruptedSwapError, match=f"{out}.*build_image_dataset"):
            gld.CreateDataset(str(out / pattern), image_size=16, batch_size=1)

    # The next build completes the swap first, even one that then fails on its own input.
    messages = []
    with pytest.raises(FileNotFoundError):
        builder.BuildImageDataset(train_directory=str(gld_folder / "train"),
                                  train_csv_path=str(tmp_path / "no.csv"),
                                  output_directory=str(out), progress=messages.append)
    assert any("Completed the shard swap" in message for message in messages)
    swap.check_no_interrupted_swap(str(out))
    train = {r["image/id"].decode() for r in _read_records(str(out / "train-*"))}
    validation = {r["image/id"].decode() for r in _read_records(str(out / "validation-*"))}
    assert train | validation == {i for v in new_ids.values() for i in v}
    assert not train & validation
    assert sorted(os.listdir(out)) == ["train-00000-of-00002", "train-00001-of-00002",
                                       "validation-00000-of-00002", "validation-00001-of-00002"]
    dataset = gld.CreateDataset(str(out / "train*"), image_size=16, batch_size=1, repeat=False)
    assert sum(1 for _ in dataset) == len(train)


def test_swap_journal_rolls_forward_removals_and_refuses_lost_files(tmp_path):
    from delf_tf.data import swap

    (tmp_path / "a").write_text("old a")
    (tmp_path / "gone").write_text("old shard of another count")
    staged = swap.StagedSwap(str(tmp_path))
    with open(staged.stage("a"), "w") as f:
        f.write("new a")
    with open(staged.stage("b"), "w") as f:
        f.write("new b")
    staged.commit(removals=["gone"])
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]
    assert (tmp_path / "a").read_text() == "new a"
    # A journal whose temporary and target are both gone cannot be completed.
    (tmp_path / swap.JOURNAL_NAME).write_text('{"renames": [[".c.tmp", "c"]], "removals": []}')
    with pytest.raises(swap.InterruptedSwapError, match="neither .c.tmp nor c exists"):
        swap.complete_interrupted_swap(str(tmp_path))
    (tmp_path / swap.JOURNAL_NAME).write_text("{not json")
    with pytest.raises(swap.InterruptedSwapError, match="unreadable swap journal"):
        swap.complete_interrupted_swap(str(tmp_path))


def test_build_image_dataset_wrapper_passes_its_keywords_to_the_engine(monkeypatch):
    """BuildImageDataset (the original's name) is build_image_dataset on ImageDatasetParams."""
    seen = []
    monkeypatch.setattr(builder, "build_image_dataset",
                        lambda params, progress: seen.append((params, progress)) or {"x": 1})
    assert builder.BuildImageDataset(num_shards=3, seed=7, progress=len) == {"x": 1}
    assert seen == [(builder.ImageDatasetParams(num_shards=3, seed=7), len)]
    with pytest.raises(TypeError):
        builder.BuildImageDataset(no_such_field=1)

"""Test-wide settings: quiet TensorFlow logs and deterministic seeds."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_bomb_png(path, width: int = 30000, height: int = 30000) -> None:
    """A ~100-byte PNG whose header claims width x height RGB pixels (a
    decompression bomb: decoding it would allocate width * height * 3 bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width))  # the first row only
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
                + chunk(b"IEND", b""))


def read_files(directory, leave_out=()) -> dict[str, bytes]:
    """{name: bytes} of the files in `directory` but those named in `leave_out`."""
    contents = {}
    for name in sorted(set(os.listdir(directory)) - set(leave_out)):
        with open(os.path.join(directory, name), "rb") as f:
            contents[name] = f.read()
    return contents


def write_gld_records(root, images, **build_options) -> str:
    """Writes `images` ((id, PIL image, label) tuples) as <root>/images/<id>.jpg with a GLD
    <root>/train.csv listing them, and builds their TFRecord shards into <root>/data
    (builder.BuildImageDataset with `build_options`); returns <root>/data."""
    from delf_tf.data import builder

    os.makedirs(root / "images")
    with open(root / "train.csv", "w") as f:
        f.write("id,url,landmark_id\n")
        for image_id, image, label in images:
            image.save(root / "images" / f"{image_id}.jpg")
            f.write(f"{image_id},http://x,{label}\n")
    builder.BuildImageDataset(
            train_directory=str(root / "images"), output_directory=str(root / "data"),
            train_csv_path=str(root / "train.csv"), progress=lambda message: None,
            **build_options)
    return str(root / "data")


@pytest.fixture(scope="session")
def tiny_delg_export(tmp_path_factory):
    """A tiny untrained DELG (resnet_tiny) exported as the tools export it: the SavedModel's
    path. Shared by the tests that run extraction tools end to end (exporting costs seconds)."""
    import random

    import keras
    import numpy as np

    from delf_tf.extraction import export
    from delf_tf.models import Delg, save_weights

    root = tmp_path_factory.mktemp("tiny_delg")
    # Seeded: the same weights in every session, whichever tests ran first (an unseeded model
    # made the search test's ranking of near-tied images differ from run to run). The Python
    # and NumPy generators are restored so later tests see the state they would have seen.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    keras.utils.set_random_seed(0)
    model = Delg(backbone="resnet_tiny")
    model.build_for_input(64)
    random.setstate(python_state)
    np.random.set_state(numpy_state)  # noqa: NPY002
    save_weights(model, str(root / "delf_weights"))
    export.ExportLocalAndGlobalModel(str(root / "delf_weights"), str(root / "export"))
    return str(root / "export")


@pytest.fixture(scope="session")
def demo_tuples_root(tmp_path_factory):
    """A data root with the tuples database "demo-SfM" (<root>/train/demo-SfM/) made from a
    small embedded demo set: 4 landmarks, 9 training images each at 64 px. Read-only; shared by
    the tuple-training tests of GlobalFeatureNet and HOW (generating it costs seconds)."""
    from delf_tf.data import demo

    small = demo.DemoConfig(num_landmarks=4, image_size=64, train_per_landmark=9,
                            noisy_per_landmark=1, queries_per_landmark=1, easy_per_landmark=2,
                            hard_per_landmark=1, junk_per_landmark=0, num_distractors=3, seed=3)
    demo_dir = str(tmp_path_factory.mktemp("demo"))
    demo.GenerateDemoDataset(demo_dir, small)
    root = str(tmp_path_factory.mktemp("tuples_root"))
    demo.WriteSfmTuplesDatabase(demo_dir, root, pairs_per_landmark=4)
    return root

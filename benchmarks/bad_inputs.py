"""Bad inputs, tried as a new user and an adversary would, against the real tools.

Every class of bad input of issue 18 ("Measured" and "Deliver"): missing / empty / truncated /
non-image files, 1x1, tiny and 12-megapixel images, decompression bombs, NaN/Inf and
mismatched-dimension feature files, zero-feature files, wrong / escaping / inconsistent .mat
ground truth, escaping CSV ids, unknown or invalid config fields, binary configs, invalid flag
values, read-only output directories, 0-byte / truncated TFRecords, interrupted dataset swaps,
query boxes outside the image, reruns with another config, the SavedModel's signature called
with 1x1 images and zero/negative/NaN scales.

Each tool's tries run inside one worker process (`--worker TOOL`) that imports the tool once
and calls its `main` per try with fresh flags; the parent restarts a worker whose process died
(the try is a crash) or ran past the time limit (a hang). Each try ends as:

  clear error     non-zero exit (or a raised input error) whose message names the file, flag or
                  value the try expects, and no traceback;
  handled         the try is one the tool must survive: it exits as expected and the outputs
                  pass the try's check (e.g. the good image was written, the features are
                  empty, the shards are the new build's);
  vague error     an error that does not name what is wrong;
  traceback       an uncaught exception;
  silently wrong  success where an error was due, or outputs that fail the check;
  crash / hang    the process died by a signal / ran past the limit.

Usage: python benchmarks/bad_inputs.py [--only TOOL ...]; prints one line per try and the
counts, and writes benchmarks/results/bad_inputs.json. Exit status 1 if any try ends in
anything but "clear error" or "handled".
"""

import argparse
import collections
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
import zlib

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

TRY_SECONDS = 180
BAD_IMAGES = ("missing", "empty", "truncated", "text", "bomb")
GOOD = ("clear error", "handled")


# ----------------------------------------------------------------------------- fixtures

def _photo(size, seed):
    """A crop of a real photograph (scikit-image), resized to size = (width, height)."""
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    photo = Image.fromarray(photos[seed % len(photos)])
    return photo.resize(size)


def _bomb_png(path, side=60000):
    """A valid PNG header declaring side x side pixels (a decompression bomb): tiny on disk."""
    def chunk(kind, payload):
        return (len(payload).to_bytes(4, "big") + kind + payload
                + zlib.crc32(kind + payload).to_bytes(4, "big"))
    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def _write_config(path, model, **changes):
    from google.protobuf import text_format

    from delf_tf.protos import delf_config_pb2

    config = delf_config_pb2.DelfConfig(model_path=model, image_scales=[0.5, 1.0],
                                        use_local_features=True, use_global_features=True,
                                        max_image_size=256)
    config.delf_local_config.use_pca = False
    config.delf_local_config.max_feature_num = 50
    config.delf_local_config.score_threshold = 0.0
    config.delf_global_config.use_pca = False
    for key, value in changes.items():
        target = config
        *parents, leaf = key.split(".")
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            del getattr(target, leaf)[:]
            getattr(target, leaf).extend(value)
        elif value is None:
            target.ClearField(leaf)
        else:
            setattr(target, leaf, value)
    # Written as text without the library's checks: some configs here are invalid on purpose.
    _write(path, text_format.MessageToString(config))


def _features(path, n, dim=128, seed=0, **bad):
    """A DelfFeatures file; bad = {'descriptors': nan} etc. put a value into one array."""
    from delf_tf.io import feature_io

    rng = np.random.default_rng(seed)
    arrays = {"locations": rng.uniform(0, 100, [n, 2]), "scales": np.ones([n]),
              "descriptors": rng.normal(size=[n, dim]), "attention": np.ones([n])}
    for key, value in bad.items():
        arrays[key][0, ...] = value
    data = feature_io.SerializeToString(arrays["locations"], arrays["scales"],
                                        arrays["descriptors"], arrays["attention"])
    with open(path, "wb") as f:
        f.write(data)


def _datum(path, vector):
    from delf_tf.io import datum_io

    with open(path, "wb") as f:
        f.write(datum_io.SerializeToString(np.asarray(vector, np.float32)))


def make_fixtures(root):
    """Writes every input the tries use under `root`."""
    from delf_tf.io import revisited

    os.makedirs(os.path.join(root, "images"))
    images = os.path.join(root, "images")
    for i in range(3):
        _photo((160, 120), i).save(os.path.join(images, f"good{i}.jpg"), quality=92)
    _photo((160, 120), 3).save(os.path.join(images, "q0.jpg"), quality=92)
    _write(os.path.join(images, "empty.jpg"))
    good = _read(os.path.join(images, "good0.jpg"))
    with open(os.path.join(images, "truncated.jpg"), "wb") as f:
        f.write(good[:len(good) // 3])
    with open(os.path.join(images, "text.jpg"), "w") as f:
        f.write("this is not an image\n")
    _photo((1, 1), 0).save(os.path.join(images, "onepx.jpg"))
    _photo((14, 11), 1).save(os.path.join(images, "tiny.jpg"))
    _photo((4000, 3000), 2).save(os.path.join(images, "twelve_mp.jpg"), quality=80)
    _bomb_png(os.path.join(images, "bomb.jpg"))  # PNG bytes: formats are sniffed
    os.makedirs(os.path.join(root, "sub_a"))
    os.makedirs(os.path.join(root, "sub_b"))
    for sub in ("sub_a", "sub_b"):
        _photo((64, 48), 0).save(os.path.join(root, sub, "same.jpg"))
    # An output directory that cannot be created: its parent is a plain file (a read-only
    # directory would not stop root, which CI may run as).
    with open(os.path.join(root, "readonly"), "w") as f:
        f.write("a file, not a directory\n")

    revisited.WriteDatasetFile(os.path.join(root, "gnd.mat"), ["good0", "good1", "good2"],
                               ["q0"], [{"bbx": [10, 10, 120, 100], "easy": [1],
                                         "hard": [2], "junk": [3]}])
    _make_model(root)
    _make_features(root)
    _make_tfrecords(root)


def _make_model(root):
    from delf_tf.extraction import export
    from delf_tf.models import Delg, save_weights

    model = Delg(backbone="resnet_tiny")
    model.build_for_input(64)
    save_weights(model, os.path.join(root, "ckpt", "delf_weights"))
    export.ExportLocalAndGlobalModel(os.path.join(root, "ckpt", "delf_weights"),
                                     os.path.join(root, "model"))
    _write_config(os.path.join(root, "config.pbtxt"), os.path.join(root, "model"))


def _make_features(root):
    """Float global (8-D) and local (16-D) features of the .mat's images, good and bad."""
    from google.protobuf import text_format

    from delf_tf.aggregation import codebook
    from delf_tf.protos import aggregation_config_pb2

    rng = np.random.default_rng(0)
    good = os.path.join(root, "features")
    os.makedirs(good)
    for i, name in enumerate(["q0", "good0", "good1", "good2"]):
        _datum(os.path.join(good, f"{name}.delg_global"), rng.normal(size=8))
        _features(os.path.join(good, f"{name}.delg_local"), 40, dim=16, seed=i)
    variants = {
        "nan_global": ("good1.delg_global", lambda p: _datum(p, [np.nan] + [1] * 7)),
        "inf_global": ("good1.delg_global", lambda p: _datum(p, [np.inf] + [1] * 7)),
        "dim_global": ("good1.delg_global", lambda p: _datum(p, np.ones(5))),
        "empty_global": ("good1.delg_global", _write),
        "trunc_global": ("good1.delg_global", _truncate),
        "text_global": ("good1.delg_global", lambda p: _write(p, "garbage text")),
        "missing_global": ("good1.delg_global", os.unlink),
        "nan_local": ("good1.delg_local", lambda p: _features(p, 40, 16, descriptors=np.nan)),
        "inf_location": ("good1.delg_local", lambda p: _features(p, 40, 16, locations=np.inf)),
        "nan_attention": ("good1.delg_local", lambda p: _features(p, 40, 16, attention=np.nan)),
        "dim_local": ("good1.delg_local", lambda p: _features(p, 40, 24)),
        "zero_local": ("good1.delg_local", lambda p: _features(p, 0, 16)),
        "trunc_local": ("good1.delg_local", _truncate),
        "missing_local": ("good1.delg_local", os.unlink),
    }
    for variant, (name, damage) in variants.items():
        directory = os.path.join(root, "features_" + variant)
        os.makedirs(directory)
        for entry in os.listdir(good):
            with open(os.path.join(good, entry), "rb") as src, \
                    open(os.path.join(directory, entry), "wb") as dst:
                dst.write(src.read())
        damage(os.path.join(directory, name))
    codebook_path = codebook.ClusterDatasetFeatures(
            os.path.join(root, "gnd.mat"), good, os.path.join(root, "codebook"),
            num_clusters=4, num_iterations=5, feature_extension=".delg_local")
    config = aggregation_config_pb2.AggregationConfig(
            codebook_size=4, feature_dimensionality=16,
            aggregation_type=aggregation_config_pb2.AggregationConfig.ASMK_STAR,
            codebook_path=codebook_path)
    with open(os.path.join(root, "aggregation.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(config))
    with open(os.path.join(root, "aggregation_unknown.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(config) + "no_such_field: 3\n")
    with open(os.path.join(root, "aggregation_nocodebook.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(config).replace(codebook_path, root + "/none"))


def _read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def _write(path, data=b""):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def _truncate(path, keep=None):
    """Cuts a file inside a record (half its length + 7 bytes, or `keep` bytes)."""
    data = _read(path)
    with open(path, "wb") as f:
        f.write(data[:keep if keep is not None else max(1, len(data) // 2 + 7)])


def _make_tfrecords(root):
    from delf_tf.data import builder

    with open(os.path.join(root, "train.csv"), "w") as f:
        f.write("id,url,landmark_id\n")
        f.writelines(f"good{i},http://x,{i % 2}\n" for i in range(3))
    builder.BuildImageDataset(train_directory=os.path.join(root, "images"),
                              output_directory=os.path.join(root, "records"),
                              train_csv_path=os.path.join(root, "train.csv"), num_shards=1,
                              progress=lambda message: None)
    os.makedirs(os.path.join(root, "records_empty"))
    _write(os.path.join(root, "records_empty", "train-00000-of-00001"))
    os.makedirs(os.path.join(root, "records_truncated"))
    shard = _read(os.path.join(root, "records", "train-00000-of-00001"))
    with open(os.path.join(root, "records_truncated", "train-00000-of-00001"), "wb") as f:
        f.write(shard[:len(shard) - 200])
    os.makedirs(os.path.join(root, "records_swap"))
    with open(os.path.join(root, "records_swap", "train-00000-of-00001"), "wb") as f:
        f.write(shard)
    with open(os.path.join(root, "records_swap", ".swap_journal.json"), "w") as f:
        f.write('{"renames": [], "removals": []}')
    with open(os.path.join(root, "not_hdf5.h5"), "w") as f:
        f.write("not an HDF5 file")


# ----------------------------------------------------------------------------- tries

class Try:
    """One bad input: `argv` for the tool (or `call`, a function of (root, out)), the
    expected ending and, for an error, the words its message must contain."""

    def __init__(self, kind, name, argv=(), *, tokens=(), check=None, codes=(0,), call=None,
                 handled=False, setup=None):
        self.kind, self.name, self.argv, self.tokens = kind, name, list(argv), list(tokens)
        self.check, self.codes, self.call = check, codes, call
        self.handled, self.setup = handled, setup


def _flags(values):
    """{flag: value} -> ['--flag=value', ...]."""
    return [f"--{key}={value}" for key, value in values.items()]


def _flag_tries(run, *flag_values):
    """Invalid flag values: each error must name its flag."""
    return [Try("flag: invalid value", f"--{flag}={value}", run(**{flag: value}), tokens=[flag])
            for flag, value in flag_values]


def _exists(*names):
    return lambda root, out: all(os.path.isfile(os.path.join(out, n)) for n in names)


def _delg_tries(root):
    images, mat = os.path.join(root, "images"), os.path.join(root, "gnd.mat")
    config = os.path.join(root, "config.pbtxt")

    def run(out_flag="{out}", **flags):
        argv = {"delf_config_path": config, "dataset_file_path": mat, "images_dir": images,
                "image_set": "index", "output_features_dir": out_flag, **flags}
        return _flags(argv)

    def mat_with(name, index, queries=("q0",), gnd=None):
        from delf_tf.io import revisited

        path = os.path.join(root, f"gnd_{name}.mat")
        if not os.path.exists(path):
            revisited.WriteDatasetFile(path, list(index), list(queries), gnd or [
                    {"bbx": [10, 10, 100, 90], "easy": [1], "hard": [], "junk": []}])
        return path

    def config_with(name, **changes):
        path = os.path.join(root, f"config_{name}.pbtxt")
        _write_config(path, os.path.join(root, "model"), **changes)
        return path

    tries = []
    for bad in BAD_IMAGES:
        tries.append(Try(f"image: {bad}", f"index list with good0 and {bad}.jpg",
                         run(dataset_file_path=mat_with(bad, ["good0", bad])),
                         tokens=[bad], codes=(1,), check=_exists("good0.delg_global")))
    for small in ("onepx", "tiny"):
        tries.append(Try(f"image: {small}", f"{small}.jpg (pyramid levels under 5 px)",
                         run(dataset_file_path=mat_with(small, [small])), handled=True,
                         check=_exists(f"{small}.delg_global", f"{small}.delg_local")))
    tries.append(Try("image: 12 megapixels", "4000x3000 photo, config without max_image_size",
                     run(dataset_file_path=mat_with("twelve", ["twelve_mp"]),
                         delf_config_path=config_with("nolimit", max_image_size=-1)),
                     handled=True, check=_exists("twelve_mp.delg_global")))
    for name, index, token in (("dotdot", ["../../x"], "../../x"), ("abs", ["/etc/passwd"],
                                                                     "/etc/passwd")):
        tries.append(Try("security: escaping .mat name", f"index name {index[0]}",
                         run(dataset_file_path=mat_with(name, index)), tokens=[token]))
    tries.append(Try("file: missing .mat", "no such .mat",
                     run(dataset_file_path=root + "/none.mat"), tokens=["none.mat"]))
    tries.append(Try("file: not a .mat", "text file as .mat",
                     run(dataset_file_path=os.path.join(images, "text.jpg")), tokens=["text.jpg"]))
    tries.append(Try("file: wrong .mat", ".mat without imlist/qimlist/gnd",
                     run(dataset_file_path=_plain_mat(root)), tokens=["plain.mat"]))
    for name, changes, token in (
            ("scale0", {"image_scales": [0.0, 1.0]}, "image_scales"),
            ("scaleneg", {"image_scales": [-1.0]}, "image_scales"),
            ("noscales", {"image_scales": []}, "image_scales"),
            ("maxfeat", {"delf_local_config.max_feature_num": -3}, "max_feature_num"),
            ("iou", {"delf_local_config.iou_threshold": 1.5}, "iou_threshold"),
            ("nanthr", {"delf_local_config.score_threshold": float("nan")}, "score_threshold"),
            ("maxsize0", {"max_image_size": 0}, "max_image_size"),
            ("nomodel", {"model_path": root + "/no_model"}, "no_model")):
        tries.append(Try("config: invalid value", f"config {name}",
                         run(delf_config_path=config_with(name, **changes)), tokens=[token]))
    unknown = os.path.join(root, "config_unknown.pbtxt")
    with open(unknown, "w") as f:
        f.write(_read(config, "r") + "\nno_such_field: 1\n")
    binary = os.path.join(root, "config_binary.pbtxt")
    with open(binary, "wb") as f:
        f.write(bytes(range(256)) * 4)
    tries += [Try("config: unknown field", "unknown field", run(delf_config_path=unknown),
                  tokens=["config_unknown.pbtxt", "no_such_field"]),
              Try("config: binary file", "binary config", run(delf_config_path=binary),
                  tokens=["config_binary.pbtxt"]),
              Try("config: missing", "no such config", run(delf_config_path=root + "/no.pbtxt"),
                  tokens=["no.pbtxt"])]
    tries += [Try("flag: invalid value", "--num_shards=0", run(num_shards=0),
                  tokens=["num_shards"]),
              Try("flag: invalid value", "--shard_index=5", run(shard_index=5),
                  tokens=["shard_index"]),
              Try("flag: invalid value", "--image_set=train", run(image_set="train"),
                  tokens=["image_set"]),
              Try("output: unwritable directory", "output dir under a file",
                  run(out_flag=os.path.join(root, "readonly", "features")),
                  tokens=[os.path.join(root, "readonly")])]
    for name, box, handled in (("partly", [100, -20, 400, 90], True),
                               ("outside", [170, 10, 260, 90], False)):
        path = mat_with("box_" + name, ["good0"], ["q0"],
                        [{"bbx": box, "easy": [1], "hard": [], "junk": []}])
        tries.append(Try("query box outside the image", f"box {box} ({name})",
                         run(dataset_file_path=path, image_set="query"), handled=handled,
                         tokens=["q0", str(float(box[0]))], codes=(0,) if handled else (1,),
                         check=_exists("q0.delg_global") if handled else None))

    def rerun_setup(root, out):
        from delf_tf.extraction import batch

        batch.ExtractDelgFeatures(config, mat, images, "index", out)

    tries.append(Try("rerun with another config", "same output dir, other config",
                     run(delf_config_path=config_with("other",
                                                      **{"delf_local_config.max_feature_num":
                                                         20})),
                     handled=True, setup=rerun_setup,
                     check=lambda root, out: "were extracted with" in _LAST_LOG[0]
                     and "--overwrite" in _LAST_LOG[0]))
    return tries


def _plain_mat(root):
    import scipy.io

    path = os.path.join(root, "plain.mat")
    if not os.path.exists(path):
        scipy.io.savemat(path, {"x": np.ones(3)})
    return path


def _delf_list_tries(root):
    images = os.path.join(root, "images")
    config = os.path.join(root, "config.pbtxt")

    def listing(name, paths):
        path = os.path.join(root, f"list_{name}.txt")
        with open(path, "w") as f:
            f.writelines(p + "\n" for p in paths)
        return path

    def run(list_path, out="{out}"):
        return [f"--config_path={config}", f"--list_images_path={list_path}",
                f"--output_dir={out}"]

    tries = [Try(f"image: {bad}", f"list with good0 and {bad}.jpg",
                 run(listing(bad, [f"{images}/good0.jpg", f"{images}/{bad}.jpg"])),
                 tokens=[f"{bad}.jpg"], codes=(1,), check=_exists("good0.delf"))
             for bad in BAD_IMAGES]
    tries += [Try("image: 1x1", "1x1 image", run(listing("one", [f"{images}/onepx.jpg"])),
                  handled=True, check=_exists("onepx.delf")),
              Try("file: missing list", "no such list", run(root + "/nolist.txt"),
                  tokens=["nolist.txt"]),
              Try("output name collision", "a/same.jpg and b/same.jpg",
                  run(listing("same", [f"{root}/sub_a/same.jpg", f"{root}/sub_b/same.jpg"])),
                  tokens=["sub_a/same.jpg", "sub_b/same.jpg"],
                  check=lambda root, out: not os.path.exists(out) or not os.listdir(out)),
              Try("output: unwritable directory", "output dir under a file",
                  run(listing("ro", [f"{images}/good0.jpg"]), root + "/readonly/delf"),
                  tokens=[root + "/readonly"])]
    return tries


def _match_tries(root):
    images, features = os.path.join(root, "images"), os.path.join(root, "features")

    def run(image_1="good0.jpg", features_1=None, output="{out}/match.png", **flags):
        argv = {"image_1_path": f"{images}/{image_1}", "image_2_path": f"{images}/good1.jpg",
                "features_1_path": features_1 or f"{features}/good0.delg_local",
                "features_2_path": f"{features}/good1.delg_local", "output_image": output,
                **flags}
        return _flags(argv)

    tries = [Try(f"image: {bad}", f"image_1 {bad}.jpg", run(image_1=f"{bad}.jpg"),
                 tokens=[f"{bad}.jpg"]) for bad in BAD_IMAGES]
    for variant in ("nan_local", "inf_location", "nan_attention", "dim_local", "trunc_local",
                    "missing_local"):
        tries.append(Try(f"features: {variant}", f"features_1 {variant}",
                         run(features_1=f"{root}/features_{variant}/good1.delg_local"),
                         tokens=["good1.delg_local"]))
    tries += [Try("features: zero features", "features_1 with 0 features",
                  run(features_1=f"{root}/features_zero_local/good1.delg_local"), handled=True,
                  check=_exists("match.png")),
              Try("flag: invalid value", "output .xyz", run(output="{out}/m.xyz"),
                  tokens=["m.xyz"]),
              Try("output: unwritable directory", "output under a file",
                  run(output=root + "/readonly/m.png"), tokens=[root + "/readonly"])]
    tries += _flag_tries(run, ("ransac_residual_threshold", -1), ("ransac_max_trials", -1),
                         ("descriptor_matching_threshold", "nan"))
    return tries


def _gt_mat(root, name, gnd):
    from delf_tf.io import revisited

    path = os.path.join(root, f"gt_{name}.mat")
    if not os.path.exists(path):
        import scipy.io

        if name == "bad_ids":  # written raw: the writer itself refuses such ids
            records = np.empty((1, 1), dtype=[("bbx", "O"), ("easy", "O"), ("hard", "O"),
                                              ("junk", "O")])
            records[0, 0] = (np.array([[0, 0, 10, 10]], float), np.array([[99.0, -5.0]]),
                             np.zeros((1, 0)), np.zeros((1, 0)))
            imlist = np.empty((3, 1), dtype=object)
            imlist[:, 0] = ["good0", "good1", "good2"]
            qimlist = np.empty((1, 1), dtype=object)
            qimlist[0, 0] = "q0"
            scipy.io.savemat(path, {"imlist": imlist, "qimlist": qimlist, "gnd": records})
        else:
            revisited.WriteDatasetFile(path, ["good0", "good1", "good2"], ["q0"], gnd)
    return path


def _retrieval_tries(root):
    mat = os.path.join(root, "gnd.mat")

    def run(features="features", gv=True, **flags):
        directory = os.path.join(root, features)
        argv = {"dataset_file_path": mat, "query_features_dir": directory,
                "index_features_dir": directory, "output_dir": "{out}",
                "use_geometric_verification": gv, **flags}
        return _flags(argv)

    tries = []
    for variant in ("nan_global", "inf_global", "dim_global", "empty_global", "trunc_global",
                    "text_global", "missing_global"):
        tries.append(Try(f"features: {variant}", variant, run("features_" + variant, gv=False),
                         tokens=["good1.delg_global"]))
    for variant in ("nan_local", "inf_location", "dim_local", "trunc_local", "missing_local"):
        tries.append(Try(f"features: {variant}", variant + " with verification",
                         run("features_" + variant), tokens=["good1.delg_local"]))
    tries.append(Try("features: zero features", "zero local features, verification",
                     run("features_zero_local"), handled=True, check=_exists("metrics.txt")))
    overlap = _gt_mat(root, "overlap", [{"bbx": [0, 0, 9, 9], "easy": [1], "hard": [],
                                         "junk": [1]}])
    tries += [Try("ground truth: out-of-range ids", "easy ids 99 and -5 with 3 images",
                  run(dataset_file_path=_gt_mat(root, "bad_ids", None)), tokens=["gt_bad_ids"]),
              Try("ground truth: easy and junk", "image 1 both easy and junk",
                  run(dataset_file_path=overlap), tokens=["gt_overlap.mat"]),
              Try("file: missing .mat", "no such .mat", run(dataset_file_path=root + "/no.mat"),
                  tokens=["no.mat"]),
              Try("file: not a .mat", "text as .mat",
                  run(dataset_file_path=f"{root}/images/text.jpg"), tokens=["text.jpg"]),
              Try("file: wrong .mat", ".mat without gnd", run(dataset_file_path=_plain_mat(root)),
                  tokens=["plain.mat"]),
              Try("file: missing features dir", "no such features dir", run("no_features"),
                  tokens=["no_features"]),
              Try("output: unwritable directory", "output dir under a file",
                  run(output_dir=f"{root}/readonly/results"),
                  tokens=[root + "/readonly"])]
    return tries + _flag_tries(run, ("num_to_rerank", -1), ("ransac_residual_threshold", -1),
                               ("ransac_max_trials", -1),
                               ("local_descriptor_matching_threshold", "nan"),
                               ("feature_cache_size", -1))


def _feature_folder_tries(root, **defaults):
    """(run, tries) of a tool reading a .mat's local feature files from --features_dir:
    run(features folder, **flags) gives its flags; the tries give it damaged files."""
    def run(features="features", **flags):
        return _flags({"dataset_file_path": os.path.join(root, "gnd.mat"),
                       "features_dir": os.path.join(root, features),
                       "feature_extension": ".delg_local", **defaults, **flags})

    return run, [Try(f"features: {variant}", variant, run("features_" + variant),
                     tokens=["good1.delg_local"])
                 for variant in ("nan_local", "inf_location", "trunc_local", "missing_local")]


def _aggregation_tries(root):
    run, tries = _feature_folder_tries(root, output_aggregation_dir="{out}",
                                       aggregation_config_path=f"{root}/aggregation.pbtxt")
    tries += [Try("features: dim_local", "dim_local", run("features_dim_local"),
                  tokens=["good1", "feature_dimensionality"]),
              Try("features: zero features", "zero local features", run("features_zero_local"),
                  handled=True, check=_exists("good1.asmk_star")),
              Try("config: unknown field", "unknown field",
                  run(aggregation_config_path=f"{root}/aggregation_unknown.pbtxt"),
                  tokens=["aggregation_unknown.pbtxt", "no_such_field"]),
              Try("file: missing codebook", "codebook path does not exist",
                  run(aggregation_config_path=f"{root}/aggregation_nocodebook.pbtxt"),
                  tokens=[root + "/none"]),
              Try("security: escaping .mat name", "index name ../../x",
                  run(dataset_file_path=_escaping_mat(root)), tokens=["../../x"]),
              Try("output: unwritable directory", "output dir under a file",
                  run(output_aggregation_dir=f"{root}/readonly/agg"),
                  tokens=[root + "/readonly"])]
    return tries


def _escaping_mat(root):
    from delf_tf.io import revisited

    path = os.path.join(root, "gnd_escaping_features.mat")
    if not os.path.exists(path):
        revisited.WriteDatasetFile(path, ["good0", "../../x"], ["q0"], [
                {"bbx": [0, 0, 9, 9], "easy": [1], "hard": [], "junk": []}])
    return path


def _cluster_tries(root):
    run, tries = _feature_folder_tries(root, output_cluster_dir="{out}", num_clusters=4,
                                       num_iterations=3)
    tries.append(Try("features: dim_local", "dim_local", run("features_dim_local"),
                     tokens=["good1.delg_local"]))
    tries += _flag_tries(run, ("num_clusters", 0), ("num_iterations", -1),
                         ("max_num_features", -1))
    tries.append(Try("flag: invalid value", "more clusters than features",
                     run(num_clusters=100000), tokens=["100000 clusters"]))
    return tries


def _gldv2_tries(root, tool):
    def csv(name, text):
        path = os.path.join(root, f"{tool}_{name}.csv")
        _write(path, text)
        return path

    if tool == "compute_recognition_metrics":
        solution = csv("s", "id,landmarks,Usage\na,1,Public\nb,2,Private\n")
        bad = {"nan score": "id,landmarks\na,1 nan\nb,2 0.5\n",
               "inf score": "id,landmarks\na,1 inf\nb,2 0.5\n",
               "unknown id": "id,landmarks\nzz,1 0.5\n",
               "missing column": "landmarks\n1 0.5\n",
               "non-numeric score": "id,landmarks\na,1 high\n"}
    else:
        solution = csv("s", "id,images,Usage\nq1,x y,Public\nq2,z,Private\n")
        bad = {"unknown id": "id,images\nq9,y\n", "missing column": "images\nx\n",
               "binary": bytes(range(256)) * 8, "one-column binary text": "\x00\x01\x02\xff"}
    tries = [Try(f"predictions: {name}", name,
                 [f"--solution_path={solution}",
                  f"--predictions_path={csv(name.replace(' ', '_'), text)}"],
                 tokens=[f"{tool}_{name.replace(' ', '_')}.csv"])
             for name, text in bad.items()]
    tries.append(Try("file: missing", "no such predictions file",
                     [f"--solution_path={solution}", f"--predictions_path={root}/nopred.csv"],
                     tokens=["nopred.csv"]))
    if tool == "compute_retrieval_metrics":
        tries.append(Try("flag: invalid value", "--max_predictions=0",
                         [f"--solution_path={solution}", f"--predictions_path={solution}",
                          "--max_predictions=0"], tokens=["max_predictions"]))
    return tries


def _builder_tries(root):
    images = os.path.join(root, "images")

    def csv(name, text):
        path = os.path.join(root, f"build_{name}.csv")
        with open(path, "w") as f:
            f.write(text)
        return path

    def run(csv_path, out="{out}", **flags):
        argv = {"train_directory": images, "train_csv_path": csv_path, "output_directory": out,
                "num_shards": 2, **flags}
        return _flags(argv)

    header = "id,url,landmark_id\n"
    good = header + "".join(f"good{i},http://x,{i % 2}\n" for i in range(3))
    tries = [Try(f"image: {bad}", f"train.csv listing {bad}.jpg",
                 run(csv(bad, good + f"{bad},http://x,1\n")), tokens=[bad],
                 check=lambda root, out: not os.path.exists(out) or not os.listdir(out))
             for bad in BAD_IMAGES]
    tries += [Try("security: escaping CSV id", f"id {bad_id}",
                  run(csv(name, good + f"{bad_id},http://x,1\n")), tokens=[bad_id])
              for name, bad_id in (("dotdot", "../outside_secret"), ("abs", "/etc/passwd"))]
    tries += [Try("file: wrong CSV", "missing landmark_id column",
                  run(csv("nocol", "id,url\ngood0,http://x\n")), tokens=["landmark_id"]),
              Try("file: wrong CSV", "non-integer label",
                  run(csv("nonint", header + "good0,http://x,abc\n")), tokens=["abc"]),
              Try("file: empty CSV", "header only", run(csv("empty", header)),
                  tokens=["build_empty.csv"]),
              Try("file: missing CSV", "no such CSV", run(root + "/nocsv.csv"),
                  tokens=["nocsv.csv"]),
              Try("zero usable images", "--skip_missing_images with only bad images",
                  run(csv("allbad", header + "text,http://x,0\nempty,http://x,1\n"),
                      skip_missing_images=True), tokens=["no usable image"]),
              Try("flag: invalid value", "--num_shards=0", run(csv("ok", good), num_shards=0),
                  tokens=["num_shards"]),
              Try("flag: invalid value", "--validation_split_size=1.5",
                  run(csv("ok", good), generate_train_validation_splits=True,
                      validation_split_size=1.5), tokens=["validation_split_size"]),
              Try("output: unwritable directory", "output dir under a file",
                  run(csv("ok", good), out=root + "/readonly/records"),
                  tokens=[root + "/readonly"])]

    def older_build(root, out):
        from delf_tf.data import builder

        builder.BuildImageDataset(train_directory=images, train_csv_path=csv("ok", good),
                                  output_directory=out, num_shards=3,
                                  progress=lambda message: None)
        with open(os.path.join(out, ".train-00001-of-00002.tmp"), "w") as f:
            f.write("left by a killed build")

    tries.append(Try("data lost: rebuild with fewer shards", "3 shards, then 2 (+ stale temp)",
                     run(csv("ok", good)), handled=True, setup=older_build,
                     check=lambda root, out: sorted(os.listdir(out)) == [
                             "train-00000-of-00002", "train-00001-of-00002"]))

    def interrupted_swap(root, out):
        from delf_tf.data import swap

        os.makedirs(out)
        with open(os.path.join(out, ".train-00000-of-00002.tmp"), "w") as f:
            f.write("new shard")
        with open(os.path.join(out, swap.JOURNAL_NAME), "w") as f:
            json.dump({"renames": [[".train-00000-of-00002.tmp", "train-00000-of-00002"]],
                       "removals": []}, f)

    tries.append(Try("data lost: kill during the shard swap", "journal left by a kill",
                     run(csv("ok", good)), handled=True, setup=interrupted_swap,
                     check=lambda root, out: sorted(os.listdir(out)) == [
                             "train-00000-of-00002", "train-00001-of-00002"]))
    return tries


def _train_tries(root):
    def run(records="records", **flags):
        argv = {"train_file_pattern": os.path.join(root, records, "train-*"),
                "validation_file_pattern": "", "logdir": "{out}", "backbone": "resnet_tiny",
                "num_classes": 2, "image_size": 32, "batch_size": 2, "max_iters": 1,
                "report_interval": 1, **flags}
        return _flags(argv)

    return [Try("TFRecord: 0 bytes", "0-byte shard (was a hang)", run("records_empty"),
                tokens=["records_empty"]),
            Try("TFRecord: truncated", "truncated shard", run("records_truncated"),
                tokens=["records_truncated/train-00000-of-00001"]),
            Try("TFRecord: interrupted rebuild", "swap journal present", run("records_swap"),
                tokens=["records_swap", "build_image_dataset"]),
            Try("TFRecord: no files", "pattern matches nothing", run("no_records"),
                tokens=["no_records"]),
            Try("flag: invalid value", "--initial_lr=nan", run(initial_lr="nan"),
                tokens=["initial_lr"]),
            Try("flag: invalid value", "--batch_size=0", run(batch_size=0),
                tokens=["batch_size"]),
            Try("flag: invalid value", "--max_iters=-5", run(max_iters=-5),
                tokens=["max_iters"]),
            Try("labels out of range", "--num_classes=1 with labels 0 and 1",
                run(num_classes=1, batch_size=3, max_iters=2), tokens=["num_classes"]),
            Try("file: non-HDF5 ImageNet file", "--imagenet_checkpoint=text file",
                run(imagenet_checkpoint=os.path.join(root, "not_hdf5.h5")),
                tokens=["not_hdf5.h5"]),
            Try("output: unwritable directory", "logdir under a file",
                run(logdir=f"{root}/readonly/log"), tokens=[root + "/readonly"])]


def _export_tries(root):
    ckpt = os.path.join(root, "ckpt", "delf_weights")

    def run(ckpt_path=ckpt, export="{out}/export", **flags):
        argv = {"ckpt_path": ckpt_path, "export_path": export, "backbone": "resnet_tiny", **flags}
        return _flags(argv)

    def truncated_checkpoint(root, out):
        import glob
        import shutil

        os.makedirs(out)
        for path in glob.glob(ckpt + "*"):
            shutil.copy(path, out)
        (data,) = glob.glob(os.path.join(out, "delf_weights.data-*"))
        _truncate(data)

    def existing_export(root, out):
        os.makedirs(os.path.join(out, "export"))
        with open(os.path.join(out, "export", "notes.txt"), "w") as f:
            f.write("not a SavedModel")

    return [Try("file: missing checkpoint", "no such checkpoint", run(root + "/no_ckpt"),
                tokens=["no_ckpt"]),
            Try("file: truncated checkpoint data", "checkpoint .data cut in half",
                run("{out}/delf_weights"), setup=truncated_checkpoint,
                tokens=["delf_weights"]),
            Try("flag: invalid value", "--iou_threshold=0", run(iou_threshold=0),
                tokens=["iou_threshold"]),
            Try("data lost: export over a non-SavedModel", "export path holds other files",
                run(overwrite=True), setup=existing_export, tokens=["export"],
                check=lambda root, out: os.path.isfile(os.path.join(out, "export",
                                                                    "notes.txt")))]


def _serving(root, image_shape, scales):
    """Calls the exported serving_default directly; returns its local feature count."""
    import tensorflow as tf

    model = tf.saved_model.load(os.path.join(root, "model"))
    outputs = model.signatures["serving_default"](
            input_image=tf.zeros(image_shape, tf.uint8),
            input_scales=tf.constant(scales, tf.float32),
            input_max_feature_num=tf.constant(10),
            input_abs_thres=tf.constant(0.0),
            input_global_scales_ind=tf.range(len(scales), dtype=tf.int32))
    return {key: value.numpy() for key, value in outputs.items()}


def _library_tries(root):
    def serving(shape, scales):
        def call(root, out):
            result = _serving(root, shape, scales)
            finite = all(np.all(np.isfinite(v)) for v in result.values()
                         if np.issubdtype(v.dtype, np.floating))
            if not finite:
                raise AssertionError("non-finite outputs")
        return call

    def read(module, path):
        def call(root, out):
            from delf_tf.io import datum_io, feature_io

            reader = {"feature": feature_io.ReadFromFile, "datum": datum_io.ReadFromFile}[module]
            reader(os.path.join(root, path))
        return call

    def metrics_overlap(root, out):
        from delf_tf.retrieval import dataset

        gnd = [{"ok": np.array([0]), "junk": np.array([0])}]
        dataset.ComputeMetrics(np.array([[0, 1, 2]]), gnd)

    tries = [Try("serving_default: degenerate input", f"image {shape}, scales {scales}",
                 call=serving(shape, scales), handled=True)
             for shape, scales in (((1, 1, 3), [1.0]), ((64, 64, 3), [0.0]),
                                   ((64, 64, 3), [-1.0, 1.0]), ((64, 64, 3), [float("nan")]),
                                   ((10, 10, 3), [0.25, 1.0]))]
    tries += [Try("features: " + what, f"read {path}", call=read(kind, path), tokens=[name])
              for what, kind, path, name in (
                      ("NaN descriptors", "feature", "features_nan_local/good1.delg_local",
                       "good1.delg_local"),
                      ("Inf locations", "feature", "features_inf_location/good1.delg_local",
                       "good1.delg_local"),
                      ("truncated", "feature", "features_trunc_local/good1.delg_local",
                       "good1.delg_local"),
                      ("NaN global", "datum", "features_nan_global/good1.delg_global",
                       "good1.delg_global"),
                      ("text", "datum", "features_text_global/good1.delg_global",
                       "good1.delg_global"))]
    def boundary(root, out):
        from delf_tf.io import feature_io

        path = os.path.join(out, "half.delg_local")
        os.makedirs(out)
        _features(path, 40, 16)
        _truncate(path, keep=len(_read(path)) // 2)  # exactly after the 20th feature
        feature_io.ReadFromFile(path)

    tries.append(Try("features: truncated", "local file cut exactly between two features",
                     call=boundary, tokens=["half.delg_local"]))
    tries.append(Try("ground truth: easy and junk", "ComputeMetrics with overlap",
                     call=metrics_overlap, tokens=["junk"]))
    return tries


GROUPS = {
        "extract_delg_features": _delg_tries,
        "extract_features": _delf_list_tries,
        "match_images": _match_tries,
        "perform_retrieval": _retrieval_tries,
        "extract_aggregation": _aggregation_tries,
        "cluster_delf_features": _cluster_tries,
        "compute_recognition_metrics": lambda root: _gldv2_tries(root,
                                                                 "compute_recognition_metrics"),
        "compute_retrieval_metrics": lambda root: _gldv2_tries(root, "compute_retrieval_metrics"),
        "build_image_dataset": _builder_tries,
        "train": _train_tries,
        "export_local_and_global_model": _export_tries,
        "library": _library_tries,
}


# ----------------------------------------------------------------------------- running

_LAST_LOG = [""]  # the last try's output, for checks that read the warnings


class _Collect(logging.Handler):
    def __init__(self, lines):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record):
        self.lines.append(record.getMessage())


def _call(module, a_try, root, out):
    """Runs one try in this process: (exit code or message, traceback or None, output)."""
    from absl import flags

    lines: list[str] = []
    handler = _Collect(lines)
    loggers = [logging.getLogger(), logging.getLogger("delf_tf"), logging.getLogger("absl")]
    for logger in loggers:
        logger.addHandler(handler)
    buffer = io.StringIO()
    code, error = 0, None
    input_errors = (ValueError, FileNotFoundError, OSError) if a_try.call else ()
    try:
        if a_try.setup:
            a_try.setup(root, out)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            if a_try.call:
                a_try.call(root, out)
            else:
                flags.FLAGS.unparse_flags()
                argv = [arg.replace("{out}", out) for arg in a_try.argv]
                module.main(flags.FLAGS(["tool", *argv]))
    except SystemExit as e:
        code = e.code
    except (flags.Error, *input_errors) as e:
        code = f"{type(e).__name__}: {e}"
    except Exception as e:  # what the harness measures
        if type(e).__name__ == "UsageError":
            code = f"UsageError: {e}"
        else:
            error = traceback.format_exc()
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    text = buffer.getvalue() + "\n" + "\n".join(lines)
    _LAST_LOG[0] = text
    return code, error, text


def _classify(a_try, code, error, text, root, out):
    """(outcome, detail) of a finished try."""
    if error:
        return "traceback", error.strip().splitlines()[-1]
    failed = code not in (0, None)
    message = (str(code) if failed else "") + "\n" + text
    if a_try.handled:
        if (code or 0) not in a_try.codes:
            return ("vague error" if failed else "silently wrong"), message.strip()[-300:]
        if a_try.check and not a_try.check(root, out):
            return "silently wrong", "the outputs fail the check"
        return "handled", f"exit {code or 0}" + (", outputs checked" if a_try.check else "")
    if not failed:
        return "silently wrong", "succeeded"
    if "Traceback (most recent call last)" in message:
        return "traceback", message.strip()[-300:]
    missing = [token for token in a_try.tokens if token not in message]
    if missing:
        return "vague error", f"does not name {missing}: {str(code)[:300]}"
    if a_try.check and not a_try.check(root, out):
        return "silently wrong", "error, but the outputs fail the check"
    return "clear error", str(code).strip().splitlines()[-1][:200] if code != 1 else (
            message.strip().splitlines()[-1][:200])


def _worker(group, start, root, results_path):
    import importlib

    logging.getLogger().setLevel(logging.INFO)
    module = (None if group == "library"
              else importlib.import_module(f"delf_tf.tools.{group}"))
    tries = GROUPS[group](root)
    with open(results_path, "a", buffering=1) as results:
        for index in range(start, len(tries)):
            out = os.path.join(root, "out", group, str(index))
            results.write(json.dumps({"index": index, "start": time.time()}) + "\n")
            began = time.perf_counter()
            code, error, text = _call(module, tries[index], root, out)
            outcome, detail = _classify(tries[index], code, error, text, root, out)
            results.write(json.dumps({"index": index, "outcome": outcome, "detail": detail,
                                      "seconds": round(time.perf_counter() - began, 2)}) + "\n")
    os._exit(0)  # skips TensorFlow's slow teardown


def _run_group(group, root, python):
    """Runs a group's tries in worker processes; a dead or stuck worker is restarted after
    the try it was running. Returns {index: result}."""
    results_path = os.path.join(root, f"results_{group}.jsonl")
    finished: dict[int, dict] = {}
    start = 0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    while True:
        process = subprocess.Popen([python, os.path.abspath(__file__), "--worker", group,
                                    str(start), root, results_path], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        running = None
        while process.poll() is None:
            time.sleep(0.5)
            running = _read_progress(results_path, finished)
            if running and time.time() - running[1] > TRY_SECONDS:
                process.kill()
                process.wait()
                finished[running[0]] = {"outcome": "hang",
                                        "detail": f"no end after {TRY_SECONDS} s"}
                break
        running = _read_progress(results_path, finished)
        if process.returncode == 0 or running is None:
            if process.returncode not in (0, None) and running is None:
                finished.setdefault(-1, {"outcome": "crash", "detail":
                                         process.stderr.read()[-500:]})
            return finished
        if running[0] not in finished:
            finished[running[0]] = {"outcome": "crash",
                                    "detail": f"exit {process.returncode}: "
                                              + process.stderr.read()[-300:]}
        start = running[0] + 1


def _read_progress(results_path, finished):
    """Reads the results file into `finished`; returns (index, start time) of a try
    started but not finished, or None."""
    started = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if "start" in entry:
                    started[entry["index"]] = entry["start"]
                else:
                    finished.setdefault(entry["index"], entry)
    pending = [(i, t) for i, t in started.items() if i not in finished]
    return pending[-1] if pending else None


def main():
    from benchmarks._results import flag_parser

    parser = flag_parser(__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="tool groups to run")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--make-fixtures", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        group, start, root, results_path = args.worker
        return _worker(group, int(start), root, results_path)
    if args.make_fixtures:
        make_fixtures(args.make_fixtures)
        os._exit(0)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bad_inputs_") as root:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--make-fixtures", root],
                       check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                                            PYTHONPATH=REPO))
        report = []
        for group in args.only or GROUPS:
            tries = _describe(group, root)
            outcomes = _run_group(group, root, sys.executable)
            for index, (kind, name) in enumerate(tries):
                result = outcomes.get(index, {"outcome": "not run", "detail": ""})
                report.append({"tool": group, "class": kind, "try": name, **result})
                print(f"{result['outcome']:>15}  {group}: {name} [{kind}]  "
                      f"{str(result.get('detail', ''))[:160]}", flush=True)
    counts = collections.Counter(entry["outcome"] for entry in report)
    print(f"\n{len(report)} bad inputs tried in {time.perf_counter() - began:.0f} s: "
          + ", ".join(f"{n} {outcome}" for outcome, n in counts.most_common()))
    from benchmarks._results import write_result

    write_result(os.path.join(REPO, "benchmarks", "results", "bad_inputs.json"),
                 {"tries": len(report), "counts": dict(counts), "report": report})
    return 0 if all(entry["outcome"] in GOOD for entry in report) else 1


def _describe(group, root):
    """(class, name) of each try of a group, built here without running anything."""
    return [(a_try.kind, a_try.name) for a_try in GROUPS[group](root)]


if __name__ == "__main__":
    sys.exit(main())

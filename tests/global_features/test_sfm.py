"""SfM database pickle reading: layout, paths, and refusal of anything but plain data."""

import os
import pickle

import numpy as np
import pytest

from delf_tf.global_features import sfm


class Payload:
    """Any class at all: a pickle naming it must be refused."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _raw():
    return {"train": {"cids": ["abcdef12", "00112233"], "cluster": np.array([0, 1]),
                      "qidxs": [0], "pidxs": [1]},
            "val": {"cids": ["99887766"], "cluster": [3], "qidxs": [], "pidxs": []}}


def test_reads_plain_containers_and_arrays(tmp_path):
    path = tmp_path / "db.pkl"
    path.write_bytes(pickle.dumps(_raw(), protocol=2))
    db = sfm.ReadSfmDatabase(str(path))
    assert db["train"].cids == ["abcdef12", "00112233"]
    np.testing.assert_array_equal(db["train"].cluster, [0, 1])
    assert db["train"].qidxs.tolist() == [0] and db["train"].pidxs.tolist() == [1]
    assert db["train"].image_paths("ims")[0] == os.path.join("ims", "12", "ef", "cd", "abcdef12")


@pytest.mark.parametrize("bad", [Payload(), {"train": {"cids": [Payload()]}}])
def test_refuses_anything_else(tmp_path, bad):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(sfm.UnsafePickleError, match=r"evil\.pkl.*posix\.system|evil\.pkl.*os"):
        sfm.SafeLoad(str(path))


def test_refuses_a_class_instance_of_any_module(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps({"train": np.random.default_rng(0)}))
    with pytest.raises(sfm.UnsafePickleError, match="obj.pkl"):
        sfm.ReadSfmDatabase(str(path))


def test_layout_errors_name_the_file(tmp_path):
    raw = _raw()
    raw["train"]["pidxs"] = [5]
    path = tmp_path / "db.pkl"
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(ValueError, match=r"db\.pkl\['train'\]: pidxs out of range"):
        sfm.ReadSfmDatabase(str(path))


def test_write_read_round_trip_and_gnd_pickle(tmp_path):
    split = sfm.SplitFromClusters(["a1", "b2", "c3", "d4"], [0, 0, 1, -1], pairs_per_cluster=5)
    assert sorted(zip(split.qidxs.tolist(), split.pidxs.tolist())) == [(0, 1), (1, 0)]
    sfm.WriteSfmDatabase(str(tmp_path / "db.pkl"), {"train": split})
    back = sfm.ReadSfmDatabase(str(tmp_path / "db.pkl"))["train"]
    assert back.cids == split.cids and back.cluster.tolist() == [0, 0, 1, -1]
    gnd = {"imlist": ["x", "y"], "qimlist": ["q"],
           "gnd": [{"bbx": [1, 2, 3, 4], "easy": [1], "hard": [], "junk": [0]}]}
    (tmp_path / "gnd_t.pkl").write_bytes(pickle.dumps(gnd))
    queries, index, truth = sfm.ReadGroundTruth(str(tmp_path / "gnd_t.pkl"))
    assert queries == ["q"] and index == ["x", "y"]
    assert truth[0]["easy"].tolist() == [1] and truth[0]["bbx"].tolist() == [1, 2, 3, 4]

"""Temporary files of interrupted atomic writes are removed, only for the given outputs."""

import os

from delf_tf.io import atomic


def test_only_the_given_outputs_temporaries_are_removed(tmp_path):
    for name in (".a.delf.k1ll3d00.tmp", ".b.delf.x.tmp", ".a.delf", "a.delf.tmp", "c.delf"):
        (tmp_path / name).write_bytes(b"x")
    removed = atomic.remove_stale_temporaries([str(tmp_path / "a.delf"),
                                               str(tmp_path / "missing_dir" / "z.delf")])
    assert removed == 1
    assert sorted(os.listdir(tmp_path)) == [".a.delf", ".b.delf.x.tmp", "a.delf.tmp", "c.delf"]

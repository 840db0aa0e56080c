import pytest

from delf_tf.io.files import require_files


def test_require_files_names_the_missing_ones(tmp_path):
    present = tmp_path / "a.delf"
    present.write_bytes(b"")
    require_files([str(present)])
    missing = [str(tmp_path / f"m{i}.delf") for i in range(4)]
    with pytest.raises(FileNotFoundError,
                       match=r"^4 feature file\(s\) missing: .*m0\.delf, .*m1\.delf and 2 more$"):
        require_files([str(present), *missing], max_named=2)

"""datum_io: dtype rules, shapes, pairs, files, bad input."""

import os

import numpy as np
import pytest

from delf_tf.io import datum_io

UINT_TYPES = [np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_TYPES = [np.float16, np.float32, np.float64]


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", UINT_TYPES)
def test_uint_round_trip_reads_back_uint32(dtype, shape):
    arr = np.arange(np.prod(shape)).reshape(shape).astype(dtype) * 7
    out = datum_io.ParseFromString(datum_io.SerializeToString(arr))
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out, arr.astype(np.uint32))


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_float_round_trip_reads_back_float32(dtype, shape):
    arr = (np.arange(np.prod(shape)).reshape(shape) / 3.0 - 1.5).astype(dtype)
    out = datum_io.ParseFromString(datum_io.SerializeToString(arr))
    assert out.dtype == np.float32
    assert out.shape == shape
    np.testing.assert_allclose(out, arr.astype(np.float32), rtol=1e-6)


def test_values_are_row_major():
    datum = datum_io.ArrayToDatum(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert list(datum.shape.dim) == [2, 3]
    assert list(datum.uint32_list.value) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.complex64])
def test_unsupported_dtype(dtype):
    with pytest.raises(ValueError, match="Unsupported array type"):
        datum_io.ArrayToDatum(np.zeros([2, 2], dtype=dtype))


def test_datum_without_values_is_an_error():
    with pytest.raises(ValueError, match="float_list or uint32_list"):
        datum_io.DatumToArray(datum_io.datum_pb2.DatumProto())


def test_file_round_trip_and_pair(tmp_path):
    arr = np.random.default_rng(0).random([3, 5]).astype(np.float32)
    path = str(tmp_path / "a.datum")
    datum_io.WriteToFile(arr, path)
    np.testing.assert_array_equal(datum_io.ReadFromFile(path), arr)

    second = np.arange(6, dtype=np.uint8).reshape(2, 3)
    pair_path = str(tmp_path / "pair.datum")
    datum_io.WritePairToFile(arr, second, pair_path)
    first_out, second_out = datum_io.ReadPairFromFile(pair_path)
    np.testing.assert_array_equal(first_out, arr)
    np.testing.assert_array_equal(second_out, second)
    assert second_out.dtype == np.uint32
    assert sorted(os.listdir(tmp_path)) == ["a.datum", "pair.datum"]


def test_empty_datum_file_names_the_file(tmp_path):
    path = tmp_path / "empty.datum"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.datum"):
        datum_io.ReadFromFile(str(path))


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "bad.datum"
    path.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="bad.datum"):
        datum_io.ReadFromFile(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.datum"):
        datum_io.ReadFromFile(str(tmp_path / "missing.datum"))


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.datum"
    with pytest.raises(ValueError):
        datum_io.WriteToFile(np.zeros([2], dtype=np.int32), str(path))
    assert os.listdir(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "perm.datum"
    datum_io.WriteToFile(np.zeros([2], np.float32), str(path))
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert (path.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_non_finite_values_are_refused_naming_the_file(tmp_path, value):
    path = str(tmp_path / "q.delg_global")
    datum_io.WriteToFile(np.array([0.5, value, 0.1], np.float32), path)
    with pytest.raises(ValueError, match="q.delg_global: values hold NaN or Inf .*index 1"):
        datum_io.ReadFromFile(path)
    datum_io.WritePairToFile(np.array([value]), np.array([1], np.uint32), path)
    with pytest.raises(ValueError, match="NaN or Inf"):
        datum_io.ReadPairFromFile(path)

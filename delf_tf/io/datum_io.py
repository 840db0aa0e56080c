"""NumPy arrays <-> DatumProto / DatumPairProto (the original's `datum_io`).

Floating arrays (float16/32/64) are stored in `float_list` and read back as
float32; unsigned integer arrays (uint8/16/32/64) in `uint32_list`, read back as
uint32. Values are flattened in row-major order. A file holds one serialized
proto with no framing.
"""

import numpy as np
from google.protobuf import message

from delf_tf.io import atomic, wire_format
from delf_tf.protos import datum_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "ArrayToDatum", "DatumToArray", "ArraysToDatumPair", "DatumPairToArrays",
    "SerializeToString", "SerializePairToString", "ParseFromString", "ParsePairFromString",
    "WriteToFile", "WritePairToFile", "ReadFromFile", "ReadPairFromFile",
    # delf_tf's own API.
    "check_finite",
]

_FLOAT_TYPES = (np.float16, np.float32, np.float64)
_UINT_TYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def ArrayToDatum(arr: np.ndarray) -> datum_pb2.DatumProto:
    """Converts an array of a supported dtype to a DatumProto."""
    arr = np.asarray(arr)
    datum = datum_pb2.DatumProto()
    if arr.dtype.type in _FLOAT_TYPES:
        datum.float_list.value.extend(arr.astype(np.float32).ravel().tolist())
    elif arr.dtype.type in _UINT_TYPES:
        datum.uint32_list.value.extend(arr.astype(np.uint32).ravel().tolist())
    else:
        raise ValueError(f"Unsupported array type: {arr.dtype}")
    datum.shape.dim.extend(arr.shape)
    return datum


def DatumToArray(datum: datum_pb2.DatumProto) -> np.ndarray:
    """Converts a DatumProto to an array (float32 or uint32) of its shape."""
    kind = datum.WhichOneof("kind_oneof")
    if kind == "float_list":
        values = np.asarray(datum.float_list.value, dtype=np.float32)
    elif kind == "uint32_list":
        values = np.asarray(datum.uint32_list.value, dtype=np.uint32)
    else:
        raise ValueError("Input DatumProto does not have float_list or uint32_list")
    return values.reshape(tuple(datum.shape.dim))


def ArraysToDatumPair(arr_1: np.ndarray, arr_2: np.ndarray) -> datum_pb2.DatumPairProto:
    """Converts two arrays to a DatumPairProto."""
    pair = datum_pb2.DatumPairProto()
    pair.first.CopyFrom(ArrayToDatum(arr_1))
    pair.second.CopyFrom(ArrayToDatum(arr_2))
    return pair


def DatumPairToArrays(pair: datum_pb2.DatumPairProto) -> tuple[np.ndarray, np.ndarray]:
    """Converts a DatumPairProto to its two arrays."""
    return DatumToArray(pair.first), DatumToArray(pair.second)


def SerializeToString(arr: np.ndarray) -> bytes:
    return ArrayToDatum(arr).SerializeToString()


def SerializePairToString(arr_1: np.ndarray, arr_2: np.ndarray) -> bytes:
    return ArraysToDatumPair(arr_1, arr_2).SerializeToString()


def _parse(message_type, data: bytes, source: str):
    proto = message_type()
    try:
        proto.ParseFromString(data)
    except message.DecodeError as e:
        raise ValueError(f"{source} is not a valid {message_type.__name__}: {e}") from e
    return proto


def check_finite(array: np.ndarray, what: str, source: str) -> np.ndarray:
    """Returns `array`; NaN or Inf values in a float array raise ValueError naming
    `source` (a file) and `what`. Such values would silently reorder rankings or
    disable verification downstream."""
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        position = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ValueError(f"{source}: {what} hold NaN or Inf (first at index "
                         f"{position if len(position) > 1 else position[0]})")
    return array


def ParseFromString(string: bytes, source: str = "input") -> np.ndarray:
    """Parses a serialized DatumProto into an array (NaN/Inf values raise ValueError)."""
    array = wire_format.ParseDatum(string)
    if array is None:
        datum = _parse(datum_pb2.DatumProto, string, source)
        try:
            array = DatumToArray(datum)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from e
    return check_finite(array, "values", source)


def ParsePairFromString(string: bytes, source: str = "input") -> tuple[np.ndarray, np.ndarray]:
    """Parses a serialized DatumPairProto into its two arrays."""
    pair = _parse(datum_pb2.DatumPairProto, string, source)
    try:
        first, second = DatumPairToArrays(pair)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e
    return check_finite(first, "values", source), check_finite(second, "values", source)


def WriteToFile(data: np.ndarray, file_path: str) -> None:
    """Writes an array to `file_path` as a DatumProto (atomically)."""
    atomic.write_bytes_atomic(file_path, SerializeToString(data))


def WritePairToFile(arr_1: np.ndarray, arr_2: np.ndarray, file_path: str) -> None:
    """Writes two arrays to `file_path` as a DatumPairProto (atomically)."""
    atomic.write_bytes_atomic(file_path, SerializePairToString(arr_1, arr_2))


def ReadFromFile(file_path: str) -> np.ndarray:
    """Reads an array from a DatumProto file."""
    return ParseFromString(atomic.read_bytes(file_path), source=str(file_path))


def ReadPairFromFile(file_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads two arrays from a DatumPairProto file."""
    return ParsePairFromString(atomic.read_bytes(file_path), source=str(file_path))

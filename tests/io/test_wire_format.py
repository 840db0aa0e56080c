"""wire_format: the vectorised decoder gives exactly what protobuf gives, or declines."""

import numpy as np
import pytest
from google.protobuf import message

from delf_tf.io import datum_io, feature_io, wire_format
from delf_tf.protos import datum_pb2, feature_pb2


def _protobuf_arrays(data: bytes):
    proto = feature_pb2.DelfFeatures()
    proto.ParseFromString(data)
    return feature_io.DelfFeaturesToArrays(proto)


def _assert_same(got, expected):
    assert len(got) == len(expected) == 5
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_array_equal(g, e)


def _serialized(num, descriptors, seed=0):
    rng = np.random.default_rng(seed)
    return feature_io.SerializeToString(
        rng.random([num, 2]) * 500, rng.random(num) * 2, descriptors, rng.random(num),
        rng.random(num) - 0.5)


@pytest.mark.parametrize("num", [1, 2, 37])
@pytest.mark.parametrize("kind", ["float", "packed_bits", "uint32", "uint8_small", "wide_float"])
def test_matches_protobuf(num, kind):
    rng = np.random.default_rng(num)
    descriptors = {
        "float": rng.normal(size=[num, 40]).astype(np.float32),
        # DELG* bytes: varints of 1 or 2 bytes, so records differ in size.
        "packed_bits": np.packbits(rng.random([num, 128]) > 0.5, axis=1),
        # Up to 5-byte varints; values above 255 stay uint32.
        "uint32": rng.integers(0, 2**32, size=[num, 9], dtype=np.uint64).astype(np.uint32),
        "uint8_small": rng.integers(0, 100, size=[num, 16], dtype=np.uint8),
        # Length varints of 2 and 3 bytes.
        "wide_float": rng.normal(size=[num, 4100]).astype(np.float32),
    }[kind]
    data = _serialized(num, descriptors)
    fast = wire_format.ParseDelfFeatures(data)
    assert fast is not None, "canonical protobuf output must take the fast path"
    _assert_same(fast, _protobuf_arrays(data))
    _assert_same(feature_io.ParseFromString(data), _protobuf_arrays(data))


def test_records_crossing_a_length_varint_boundary():
    # 127 vs 128 byte records: one- and two-byte length prefixes in one file.
    values = np.zeros([6, 40], dtype=np.uint32)
    values[::2, :20] = 200  # two-byte varints make those records longer
    data = _serialized(6, values)
    assert wire_format.ParseDelfFeatures(data) is not None
    _assert_same(feature_io.ParseFromString(data), _protobuf_arrays(data))


def test_last_record_much_shorter_than_the_longest():
    values = np.full([3, 10], 2**31, dtype=np.uint32)  # 5-byte varints
    values[-1] = 1  # 1-byte varints: 40 bytes shorter than the others
    data = _serialized(3, values)
    assert wire_format.ParseDelfFeatures(data) is not None
    _assert_same(feature_io.ParseFromString(data), _protobuf_arrays(data))


def _feature(**fields) -> feature_pb2.DelfFeature:
    feature = feature_pb2.DelfFeature(**fields)
    feature.descriptor.CopyFrom(datum_io.ArrayToDatum(np.arange(4, dtype=np.float32)))
    return feature


@pytest.mark.parametrize("case", ["missing_field", "unknown_field", "field_order",
                                  "unpacked", "different_dims", "two_d_shape"])
def test_other_valid_encodings_fall_back_to_protobuf(case):
    features = feature_pb2.DelfFeatures()
    for i in range(3):
        features.feature.add().CopyFrom(
            _feature(x=i, y=2 * i, scale=1, orientation=0, strength=0.5))
    data = features.SerializeToString()
    if case == "missing_field":
        features.feature[1].ClearField("orientation")
        data = features.SerializeToString()
    elif case == "unknown_field":
        data += b"\x10\x01"  # field 2 varint: ignored by protobuf
    elif case == "field_order":
        # strength before descriptor in the last feature.
        last = features.feature[2]
        body = feature_pb2.DelfFeature(strength=last.strength).SerializeToString()
        last.ClearField("strength")
        body += last.SerializeToString()
        del features.feature[2]
        data = features.SerializeToString() + b"\x0a" + bytes([len(body)]) + body
    elif case == "unpacked":
        # float_list values as three separate fixed32 fields instead of one packed run.
        datum = b"\x0a\x03\x0a\x01\x03" + b"\x12\x0f" + b"".join(
            b"\x0d" + np.float32(v).tobytes() for v in (1, 2, 3))
        body = b"\x0a" + bytes([len(datum)]) + datum
        data = b"\x0a" + bytes([len(body)]) + body
    elif case == "different_dims":
        features.feature[1].descriptor.CopyFrom(datum_io.ArrayToDatum(np.ones(5, np.float32)))
        data = features.SerializeToString()
    elif case == "two_d_shape":
        features.feature[1].descriptor.CopyFrom(
            datum_io.ArrayToDatum(np.ones([2, 2], np.float32)))
        data = features.SerializeToString()
    assert wire_format.ParseDelfFeatures(data) is None
    if case == "different_dims":
        with pytest.raises(ValueError, match="feature 1 has a 5-D descriptor"):
            feature_io.ParseFromString(data)
    else:
        _assert_same(feature_io.ParseFromString(data), _protobuf_arrays(data))


def test_corrupted_bytes_give_the_protobuf_result_or_error():
    rng = np.random.default_rng(3)
    clean = _serialized(5, np.packbits(rng.random([5, 64]) > 0.5, axis=1))
    for trial in range(300):
        data = bytearray(clean)
        if trial % 3 == 0:
            data = data[:rng.integers(1, len(data))]
        else:
            for pos in rng.integers(0, len(data), size=1 + trial % 4):
                data[pos] = rng.integers(0, 256)
        data = bytes(data)
        try:
            expected = _protobuf_arrays(data)
        except (message.DecodeError, ValueError):
            expected = None
        fast = wire_format.ParseDelfFeatures(data)
        if fast is not None:
            assert expected is not None, (
                f"trial {trial}: protobuf rejects what the fast path accepted")
            _assert_same(fast, expected)


def test_truncated_file_still_raises_naming_the_source():
    data = _serialized(4, np.ones([4, 8], np.float32))
    with pytest.raises(ValueError, match="f.delf"):
        feature_io.ParseFromString(data[:-3], source="f.delf")


@pytest.mark.parametrize("array", [
    np.linspace(-1, 1, 2048, dtype=np.float32),
    np.arange(24, dtype=np.float64).reshape(2, 3, 4),
    np.array([0, 1, 300, 2**32 - 1], dtype=np.uint32),
    np.array(7.5),
])
def test_datum_matches_protobuf(array):
    data = datum_io.SerializeToString(array)
    proto = datum_pb2.DatumProto()
    proto.ParseFromString(data)
    expected = datum_io.DatumToArray(proto)
    fast = wire_format.ParseDatum(data)
    if array.ndim:
        assert fast is not None
    got = datum_io.ParseFromString(data)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.flags.writeable
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("descriptors", [
    np.ones([5, 128], np.float32),
    np.packbits(np.random.default_rng(0).random([5, 256]) > 0.5, axis=1),
    np.ones([2, 4100], np.float32),
])
def test_peek_first_feature_reads_type_and_size_from_the_head(descriptors):
    data = _serialized(len(descriptors), descriptors)
    binary = descriptors.dtype == np.uint8
    assert wire_format.PeekFirstFeature(data[:256], len(data)) == (descriptors.shape[1], binary)
    # The first feature must end inside the file.
    first_record = len(data) // len(descriptors)
    assert wire_format.PeekFirstFeature(data[:256], first_record - 1 if not binary else 20) is None
    assert wire_format.PeekFirstFeature(b"\x0a\xff\xff\xff garbage", 13) is None
    assert wire_format.PeekFirstFeature(b"", 0) is None

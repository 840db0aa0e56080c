"""Vectorised decoding of DelfFeatures / DatumProto bytes with NumPy.

A feature file holds one DelfFeature message per keypoint, each with its own
DatumProto descriptor; going through the protobuf objects costs a Python
round trip per feature and per field. Writers (this package's and the
original's, both through protobuf) lay every feature out the same way:

    DelfFeatures.feature (1, LEN) ->
      descriptor (1, LEN) -> shape (1, LEN) -> packed int64 dims
                             float_list (2, LEN) -> packed float32
                           | uint32_list (3, LEN) -> packed varints
      x (2, fixed32), y (3), scale (4), orientation (5), strength (6)

These functions decode exactly that layout, for all features at once, and
check every tag and length on the way. Anything else (other field order,
missing or unknown fields, unpacked lists, truncation) makes them return None
so the caller falls back to the protobuf parser, which accepts any valid
encoding and reports errors; so results never differ from the protobuf path.
"""

import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

__all__ = [
    # The original's names (the compatibility surface).
    "ParseDelfFeatures", "ParseDatum", "PeekFirstFeature",
    # delf_tf's own API.
    "FeatureArrays",
]

# Wire tags (field number << 3 | wire type).
_TAG_LEN_1 = 0x0A  # field 1, length-delimited: DelfFeatures.feature, DelfFeature.descriptor,
                   # DatumProto.shape, DatumShape.dim, FloatList.value, Uint32List.value
_TAG_FLOAT_LIST = 0x12  # DatumProto.float_list
_TAG_UINT32_LIST = 0x1A  # DatumProto.uint32_list
# DelfFeature.x, y, scale, orientation, strength: fields 2..6, fixed32, in this order.
_TAIL_TAGS = np.array([0x15, 0x1D, 0x25, 0x2D, 0x35], dtype=np.uint8)
_TAIL_BYTES = 5 * len(_TAIL_TAGS)

FeatureArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """(value, position after it) of the varint at buf[pos], or None."""
    value, shift = 0, 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return None


def _varints_at(data: np.ndarray, pos: np.ndarray, limit: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """Decodes one varint (at most 5 bytes, < 2^32) at each position.

    Returns (values int64, positions after them), or None if any varint is
    longer, runs past its `limit`, or does not fit 32 bits.
    """
    if (pos >= limit).any():
        return None
    byte = data[pos]
    value = (byte & 0x7F).astype(np.int64)
    after = np.where(byte < 0x80, pos + 1, 0)
    for k in range(1, 5):
        open_ = np.flatnonzero(after == 0)
        if not len(open_):
            break
        at = pos[open_] + k
        if (at >= limit[open_]).any():
            return None
        byte = data[at]
        value[open_] |= (byte & 0x7F).astype(np.int64) << (7 * k)
        after[open_] = np.where(byte < 0x80, at + 1, 0)
    if (after == 0).any() or (value >= 1 << 32).any():
        return None
    return value, after


def _tagged_lengths(data: np.ndarray, pos: np.ndarray, limit: np.ndarray, tag: int,
                    fills_limit: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """(lengths int64, payload starts) of the length-delimited fields with one-byte `tag`
    at each position, or None unless every position lies before its limit, holds `tag`
    and is followed by a length that `_varints_at` reads (with `fills_limit`: and the
    payload ends exactly at the limit)."""
    if not ((pos < limit).all() and (data[pos] == tag).all()):
        return None
    read = _varints_at(data, pos + 1, limit)
    if read is None or (fills_limit and (read[0] + read[1] != limit).any()):
        return None
    return read


def _gather(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """[N, width] bytes data[starts[i] : starts[i] + width] (a view when evenly spaced)."""
    if width == 0:
        return np.zeros([len(starts), 0], dtype=np.uint8)
    if len(starts) > 1:
        step = int(starts[1] - starts[0])
        if step >= width and (np.diff(starts) == step).all():
            first = int(starts[0])
            return np.lib.stride_tricks.as_strided(
                data[first:], shape=(len(starts), width), strides=(step, 1))
    return data[starts[:, None] + np.arange(width)]


def _record_bounds(buf: bytes, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(payload starts, payload ends, record size if all are equal else 0) of the
    field-1 LEN records filling `buf`."""
    first = _read_varint(buf, 1, len(buf)) if buf[0] == _TAG_LEN_1 else None
    if first is None:
        return None
    length, header = first
    stride = header + length
    if len(buf) % stride == 0:
        # Equal-sized records (float descriptors): every row must start with the
        # same tag and length bytes, which also proves the boundaries.
        rows = data.reshape(-1, stride)
        if (rows[:, :header] == rows[0, :header]).all():
            starts = np.arange(len(rows), dtype=np.int64) * stride + header
            return starts, starts + length, stride
    # Records of different sizes: protobuf's C parser splits them (as a message
    # of one repeated bytes field 1). The records then fill `buf` exactly with
    # shortest-form tags and lengths only if nothing else is there: any other
    # field or longer encoding would leave bytes over.
    records = _records_message()
    try:
        records.ParseFromString(buf)
    except message.DecodeError:
        return None
    lengths = np.fromiter(map(len, records.record), dtype=np.int64, count=len(records.record))
    headers = 2 + (lengths >= 1 << 7) + (lengths >= 1 << 14) + (lengths >= 1 << 21) + (
        lengths >= 1 << 28)
    ends = np.cumsum(headers + lengths)
    if not len(ends) or ends[-1] != len(buf):
        return None
    return ends - lengths, ends, 0


@functools.cache
def _records_message_class() -> type:
    """A message of one `repeated bytes record = 1`: DelfFeatures with each
    feature left undecoded."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="delf_tf/io/wire_format_records.proto", package="delf_tf.io.wire_format")
    file_proto.message_type.add(name="Records").field.add(
        name="record", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("delf_tf.io.wire_format.Records"))


def _records_message():
    return _records_message_class()()


def _decode_packed_varints(data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           count: int) -> np.ndarray | None:
    """[N, count] uint32 from packed varints data[starts[i]:ends[i]], or None."""
    if len(starts) == 0:
        return np.zeros([0, count], dtype=np.uint32)
    widths = ends - starts
    if (widths < count).any() or (widths > 5 * count).any():
        return None
    offsets = np.arange(int(widths.max()))
    if starts[-1] + len(offsets) <= len(data):
        windows = np.lib.stride_tricks.sliding_window_view(data, len(offsets))[starts]
    else:
        windows = data[np.minimum(starts[:, None] + offsets, len(data) - 1)]
    payload = windows[offsets < widths[:, None]]
    is_last = payload < 0x80
    last_pos = np.flatnonzero(is_last)
    record_last = np.cumsum(widths) - 1
    # Every run must end on a varint boundary after exactly `count` values.
    if len(last_pos) != count * len(starts) or (last_pos[count - 1::count] != record_last).any():
        return None
    first_pos = np.empty_like(last_pos)
    first_pos[0] = 0
    first_pos[1:] = last_pos[:-1] + 1
    sizes = last_pos - first_pos + 1
    longest = int(sizes.max())
    if longest > 5:
        return None
    wide = np.uint64 if longest == 5 else np.uint32
    values = (payload[first_pos] & 0x7F).astype(wide)
    for k in range(1, longest):
        byte = payload[np.minimum(first_pos + k, last_pos)] & 0x7F
        values |= (byte.astype(wide) << wide(7 * k)) * (sizes > k)
    if longest == 5 and (values >= 1 << 32).any():
        return None
    return values.astype(np.uint32).reshape(len(starts), count)


def _shape_dims(buf: bytes, start: int, end: int) -> list[int] | None:
    """The dims of a DatumShape payload buf[start:end] (packed non-negative int64)."""
    if start == end:
        return []
    if buf[start] != _TAG_LEN_1:
        return None
    read = _read_varint(buf, start + 1, end)
    if read is None or read[0] + read[1] != end:
        return None
    pos, dims = read[1], []
    while pos < end:
        read = _read_varint(buf, pos, end)
        if read is None or read[0] >= 1 << 63:
            return None
        dims.append(read[0])
        pos = read[1]
    return dims


def _datum_layout(buf: bytes, start: int, end: int, limit: int | None = None
                  ) -> tuple[int, list[int], int, int] | None:
    """(list tag, dims, start of the packed values, their byte length) of the
    DatumProto buf[start:end] laid out as shape then one packed list, or None.

    Only buf[:limit] is read (default `end`): the head of a file may end before
    the datum does, and the values need not be in it.
    """
    limit = end if limit is None else limit
    if start >= limit or buf[start] != _TAG_LEN_1:
        return None
    read = _read_varint(buf, start + 1, limit)
    if read is None or read[0] + read[1] >= limit:
        return None
    list_pos = read[0] + read[1]
    dims = _shape_dims(buf, read[1], list_pos)
    list_tag = buf[list_pos]
    if dims is None or list_tag not in (_TAG_FLOAT_LIST, _TAG_UINT32_LIST):
        return None
    read = _read_varint(buf, list_pos + 1, limit)
    if (read is None or read[0] + read[1] != end or read[1] >= limit
            or buf[read[1]] != _TAG_LEN_1):
        return None
    read = _read_varint(buf, read[1] + 1, limit)
    if read is None or read[0] + read[1] != end:
        return None
    return list_tag, dims, read[1], read[0]


def _parse_datums(buf: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray
                  ) -> np.ndarray | None:
    """Decodes DatumProtos data[starts[i]:ends[i]] that share one shape and kind
    into [N, D] float32 (float_list) or uint32 (uint32_list) values, or None."""
    # shape (field 1): identical bytes in every datum.
    read = _tagged_lengths(data, starts, ends, _TAG_LEN_1)
    if read is None:
        return None
    shape_len, shape_start = read
    list_pos = shape_start + shape_len
    if (shape_len != shape_len[0]).any() or (list_pos >= ends).any():
        return None
    shape_bytes = _gather(data, shape_start, int(shape_len[0]))
    if not (shape_bytes == shape_bytes[0]).all():
        return None
    dims = _shape_dims(buf, int(shape_start[0]), int(list_pos[0]))
    if dims is None:
        return None
    count = int(np.prod(dims, dtype=object))
    if count == 0 or count > len(buf):
        return None
    # float_list (2) or uint32_list (3), each holding one packed field 1.
    list_tag = buf[int(list_pos[0])]
    if list_tag not in (_TAG_FLOAT_LIST, _TAG_UINT32_LIST):
        return None
    read = _tagged_lengths(data, list_pos, ends, list_tag, fills_limit=True)
    if read is None:
        return None
    read = _tagged_lengths(data, read[1], ends, _TAG_LEN_1, fills_limit=True)
    if read is None:
        return None
    values_len, values_start = read
    if list_tag == _TAG_FLOAT_LIST:
        if (values_len != 4 * count).any():
            return None
        values = _gather(data, values_start, 4 * count).view("<f4").reshape(len(starts), count)
    else:
        values = _decode_packed_varints(data, values_start, ends, count)
    return values


def _parse_features(buf: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Decodes DelfFeature messages data[starts[i]:ends[i]] into (descriptors
    [N, D] float32/uint32, fixed32 fields [N, 5] float32 in field order x, y,
    scale, orientation, strength), or None."""
    # descriptor (field 1), then exactly the five fixed32 fields.
    read = _tagged_lengths(data, starts, ends, _TAG_LEN_1)
    if read is None:
        return None
    datum_len, datum_start = read
    datum_end = datum_start + datum_len
    if (datum_end + _TAIL_BYTES != ends).any():
        return None
    tail = _gather(data, datum_end, _TAIL_BYTES).reshape(len(starts), 5, 5)
    if not (tail[:, :, 0] == _TAIL_TAGS).all():
        return None
    descriptors = _parse_datums(buf, data, datum_start, datum_end)
    if descriptors is None:
        return None
    return descriptors, np.ascontiguousarray(tail[:, :, 1:]).view("<f4")[:, :, 0]


def _parse_uniform(buf: bytes, data: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   stride: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Equal-sized records with float descriptors: decodes the first record and
    checks that every other one has the same bytes outside its float values.
    The first record is row 0 of the [N, stride] byte matrix, so its positions
    are the column offsets of every record."""
    start, end = int(starts[0]), int(ends[0])
    if buf[start] != _TAG_LEN_1:
        return None
    read = _read_varint(buf, start + 1, end)
    if read is None:
        return None
    datum_start, fields_offset = read[1], read[0] + read[1]
    if fields_offset + _TAIL_BYTES != end:
        return None
    if bytes(buf[fields_offset:end:5]) != _TAIL_TAGS.tobytes():
        return None
    layout = _datum_layout(buf, datum_start, fields_offset)
    if layout is None or layout[0] != _TAG_FLOAT_LIST:
        return None
    _, dims, values_offset, width = layout
    count = int(np.prod(dims, dtype=object))
    if count == 0 or width != 4 * count:
        return None
    rows = data.reshape(-1, stride)
    # Every byte outside the float values: the record's head up to the packed
    # values, and the five tags of the fixed32 fields.
    head = rows[:, :values_offset]
    tags = rows[:, fields_offset:fields_offset + _TAIL_BYTES:5]
    if not ((head == head[0]).all() and (tags == tags[0]).all()):
        return None
    descriptors = rows[:, values_offset:values_offset + width].view("<f4")
    tail = rows[:, fields_offset:fields_offset + _TAIL_BYTES].reshape(len(rows), 5, 5)
    fields = np.ascontiguousarray(tail[:, :, 1:]).view("<f4")[:, :, 0]
    return descriptors, fields


def ParseDelfFeatures(buf: bytes, float_dtype=np.float64) -> FeatureArrays | None:
    """The five arrays of `feature_io.DelfFeaturesToArrays` from serialized
    DelfFeatures, or None when `buf` is not in the layout described above.

    Float values come as `float_dtype`: float64 as the original's arrays, or
    float32, the precision they are stored in."""
    if not buf:
        return None
    data = np.frombuffer(buf, dtype=np.uint8)
    bounds = _record_bounds(buf, data)
    if bounds is None:
        return None
    starts, ends, stride = bounds
    parsed = None
    if stride and len(starts) > 1:
        parsed = _parse_uniform(buf, data, starts, ends, stride)
    if parsed is None:
        parsed = _parse_features(buf, data, starts, ends)
    if parsed is None:
        return None
    descriptors, fields = parsed
    if descriptors.dtype == np.uint32:
        # Bit-packed DELG* bytes travel as uint32 on the wire; give them back as bytes.
        if descriptors.max() <= 255:
            descriptors = descriptors.astype(np.uint8)
    else:
        descriptors = descriptors.astype(float_dtype)
    with np.errstate(invalid="ignore"):  # signalling NaNs become quiet ones, as in protobuf
        fields = fields.T.astype(float_dtype)
    x, y, scales, orientations, attention = fields
    return np.stack([y, x], axis=1), scales, descriptors, attention, orientations


def ParseDatum(buf: bytes) -> np.ndarray | None:
    """The array (float32 or uint32, of its shape) of one serialized DatumProto,
    or None when it is not one shape followed by one packed list."""
    layout = _datum_layout(buf, 0, len(buf))
    if layout is None:
        return None
    list_tag, dims, values_start, values_len = layout
    count = int(np.prod(dims, dtype=object))
    if count == 0 or count > len(buf):
        return None
    if list_tag == _TAG_FLOAT_LIST:
        if values_len != 4 * count:
            return None
        values = np.frombuffer(buf, dtype="<f4", count=count, offset=values_start)
        return values.astype(np.float32).reshape(dims)
    data = np.frombuffer(buf, dtype=np.uint8)
    values = _decode_packed_varints(data, np.array([values_start]), np.array([len(buf)]), count)
    return None if values is None else values.reshape(dims)


def PeekFirstFeature(head: bytes, file_size: int) -> tuple[int, bool] | None:
    """(descriptor value count, bit-packed?) of the first feature of a
    DelfFeatures file, from its first bytes `head` and its size.

    Reads only the tags and lengths up to the first descriptor's values (a few
    dozen bytes) and checks that the first feature is laid out as above and
    ends inside the file. None when it cannot tell; callers then parse the
    whole file. `bit-packed` is True for uint32_list descriptors.
    """
    end = len(head)
    if not head or head[0] != _TAG_LEN_1:
        return None
    read = _read_varint(head, 1, end)
    if read is None or read[0] + read[1] > file_size:
        return None
    record_end = read[0] + read[1]
    if read[1] >= end or head[read[1]] != _TAG_LEN_1:
        return None
    read = _read_varint(head, read[1] + 1, end)
    if read is None:
        return None
    datum_start, datum_end = read[1], read[0] + read[1]
    if datum_end + _TAIL_BYTES != record_end:
        return None
    layout = _datum_layout(head, datum_start, datum_end, limit=end)
    if layout is None:
        return None
    list_tag, dims, _, values_len = layout
    count = int(np.prod(dims, dtype=object))
    if list_tag == _TAG_FLOAT_LIST:
        ok = values_len == 4 * count
    else:
        ok = count <= values_len <= 5 * count
    return (count, list_tag == _TAG_UINT32_LIST) if ok and count > 0 else None

"""Local features <-> DelfFeatures protos and files (the original's `feature_io`).

Locations are (y, x) = (row, col) pairs: ``locations[i, 0]`` is stored as the
feature's ``y`` and ``locations[i, 1]`` as its ``x``; ``attention`` is stored as
``strength``. Each descriptor is its own 1-D DatumProto: float descriptors as
float_list, bit-packed binarized (uint8) DELG* descriptors as uint32_list.

The engine reads and writes `LocalFeatures` (`read_features`, `write_features`,
`parse_features`, `serialize_features`, `features_to_proto`); the original's
functions over five loose arrays (`ReadFromFile`, `WriteToFile`, ...) are thin
wrappers over it that keep the original's float64 arrays.
"""

import numpy as np
from google.protobuf import message

from delf_tf.io import atomic, datum_io, wire_format
from delf_tf.local_features import LocalFeatures
from delf_tf.protos import feature_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "ArraysToDelfFeatures",
    "DelfFeaturesToArrays",
    "SerializeToString",
    "ParseFromString",
    "WriteToFile",
    "ReadFromFile",
    # This package's.
    "LocalFeatures",
    "features_to_proto",
    "serialize_features",
    "parse_features",
    "write_features",
    "read_features",
]

FeatureArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _loose(locations, scales, descriptors, attention, orientations=None) -> LocalFeatures:
    """The LocalFeatures of the original's loose arrays (orientations None: zeros)."""
    if orientations is None:
        orientations = np.zeros([len(locations)], dtype=np.float32)
    return LocalFeatures(locations, scales, descriptors, attention, orientations)


def _original_arrays(features: LocalFeatures) -> FeatureArrays:
    """The original's five arrays of features read as float64; zero features
    give five empty arrays."""
    if not len(features):
        return (np.array([]), np.array([]), np.array([]), np.array([]), np.array([]))
    return features.arrays()


def features_to_proto(features: LocalFeatures) -> feature_pb2.DelfFeatures:
    """The DelfFeatures message of `features`."""
    delf_features = feature_pb2.DelfFeatures()
    for i in range(len(features)):
        feature = delf_features.feature.add()
        feature.y = features.locations[i, 0]
        feature.x = features.locations[i, 1]
        feature.scale = features.scales[i]
        feature.orientation = features.orientations[i]
        feature.strength = features.attention[i]
        feature.descriptor.CopyFrom(datum_io.ArrayToDatum(features.descriptors[i]))
    return delf_features


def ArraysToDelfFeatures(
    locations: np.ndarray,
    scales: np.ndarray,
    descriptors: np.ndarray,
    attention: np.ndarray,
    orientations: np.ndarray | None = None,
) -> feature_pb2.DelfFeatures:
    """Builds DelfFeatures from locations [N,2] (y,x), scales [N], descriptors
    [N,D], attention [N] and optional orientations [N] (zeros if None)."""
    return features_to_proto(_loose(locations, scales, descriptors, attention, orientations))


def DelfFeaturesToArrays(delf_features: feature_pb2.DelfFeatures) -> FeatureArrays:
    """Returns (locations [N,2], scales [N], descriptors [N,D], attention [N],
    orientations [N]) as float64 arrays; zero features give five empty arrays.

    Bit-packed (uint32_list) descriptors are returned as uint8 [N, D/8] (other
    uint32 descriptors as uint32).
    """
    if not delf_features.feature:
        return (np.array([]), np.array([]), np.array([]), np.array([]), np.array([]))

    features = delf_features.feature
    descriptor_list = [datum_io.DatumToArray(f.descriptor).ravel() for f in features]
    dims = {d.size for d in descriptor_list}
    if len(dims) != 1:
        sizes = [d.size for d in descriptor_list]
        bad = next(i for i, size in enumerate(sizes) if size != sizes[0])
        raise ValueError(
            f"feature {bad} has a {sizes[bad]}-D descriptor, feature 0 has {sizes[0]}-D")
    descriptors = np.stack(descriptor_list)
    if descriptors.dtype == np.uint32:
        # Bit-packed DELG* bytes travel as uint32 on the wire; give them back as bytes.
        if descriptors.size == 0 or descriptors.max() <= 255:
            descriptors = descriptors.astype(np.uint8)
    else:
        descriptors = descriptors.astype(np.float64)
    locations = np.array([(f.y, f.x) for f in features], dtype=np.float64)
    scales = np.array([f.scale for f in features], dtype=np.float64)
    attention = np.array([f.strength for f in features], dtype=np.float64)
    orientations = np.array([f.orientation for f in features], dtype=np.float64)
    return locations, scales, descriptors, attention, orientations


def serialize_features(features: LocalFeatures) -> bytes:
    """`features` as serialized DelfFeatures."""
    return features_to_proto(features).SerializeToString()


def SerializeToString(locations, scales, descriptors, attention, orientations=None) -> bytes:
    return serialize_features(_loose(locations, scales, descriptors, attention, orientations))


def parse_features(string: bytes, source: str = "input",
                   float_dtype=np.float32) -> LocalFeatures:
    """Parses serialized DelfFeatures, float values as `float_dtype` (float32:
    the stored precision; float64: the original's arrays); NaN/Inf values raise
    ValueError naming `source`."""
    # Files written by protobuf (ours and the original's) decode in one vectorised
    # pass; any other valid encoding, and every error, goes through protobuf.
    arrays = wire_format.ParseDelfFeatures(string, float_dtype=float_dtype)
    if arrays is None:
        delf_features = feature_pb2.DelfFeatures()
        try:
            delf_features.ParseFromString(string)
        except message.DecodeError as e:
            raise ValueError(f"{source} is not a valid DelfFeatures file: {e}") from e
        try:
            arrays = DelfFeaturesToArrays(delf_features)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from e
        if not delf_features.feature:
            return LocalFeatures.empty()
        arrays = tuple(a if a.dtype.kind in "ui" else a.astype(float_dtype, copy=False)
                       for a in arrays)
    for name, array in zip(LocalFeatures.FIELDS, arrays):
        datum_io.check_finite(array, name, source)
    return LocalFeatures(*arrays)


def ParseFromString(string: bytes, source: str = "input") -> FeatureArrays:
    """Parses serialized DelfFeatures into the five arrays; NaN/Inf values raise
    ValueError naming `source`."""
    return _original_arrays(parse_features(string, source, np.float64))


def write_features(file_path: str, features: LocalFeatures) -> None:
    """Writes `features` to `file_path` as a DelfFeatures file (atomically)."""
    atomic.write_bytes_atomic(file_path, serialize_features(features))


def read_features(file_path: str, float_dtype=np.float32) -> LocalFeatures:
    """Reads a DelfFeatures file (float values as `float_dtype`, see
    `parse_features`); errors name the file."""
    return parse_features(atomic.read_bytes(file_path), str(file_path), float_dtype)


def WriteToFile(file_path: str, locations, scales, descriptors, attention,
                orientations=None) -> None:
    """Writes features to `file_path` (atomically). Note: path comes first."""
    write_features(file_path, _loose(locations, scales, descriptors, attention, orientations))


def ReadFromFile(file_path: str) -> FeatureArrays:
    """Reads (locations, scales, descriptors, attention, orientations)."""
    return _original_arrays(read_features(file_path, np.float64))

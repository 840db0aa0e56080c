"""Local features <-> DelfFeatures protos and files (the original's `feature_io`).

Locations are (y, x) = (row, col) pairs: ``locations[i, 0]`` is stored as the
feature's ``y`` and ``locations[i, 1]`` as its ``x``; ``attention`` is stored as
``strength``. Each descriptor is its own 1-D DatumProto: float descriptors as
float_list, bit-packed binarized (uint8) DELG* descriptors as uint32_list.
"""

import numpy as np
from google.protobuf import message

from delf_tf.io import atomic, datum_io, wire_format
from delf_tf.protos import feature_pb2

_ARRAY_NAMES = ("locations", "scales", "descriptors", "attention", "orientations")
FeatureArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def ArraysToDelfFeatures(
    locations: np.ndarray,
    scales: np.ndarray,
    descriptors: np.ndarray,
    attention: np.ndarray,
    orientations: np.ndarray | None = None,
) -> feature_pb2.DelfFeatures:
    """Builds DelfFeatures from locations [N,2] (y,x), scales [N], descriptors
    [N,D], attention [N] and optional orientations [N] (zeros if None)."""
    locations = np.asarray(locations)
    num_features = len(locations)
    scales = np.asarray(scales)
    descriptors = np.asarray(descriptors)
    attention = np.asarray(attention)
    if orientations is None:
        orientations = np.zeros([num_features], dtype=np.float32)
    orientations = np.asarray(orientations)
    for name, arr in (("scales", scales), ("descriptors", descriptors),
                      ("attention", attention), ("orientations", orientations)):
        if len(arr) != num_features:
            raise ValueError(
                f"{name} has {len(arr)} entries but locations has {num_features}")
    if num_features and (locations.ndim != 2 or locations.shape[1] != 2):
        raise ValueError(f"locations must be [N, 2] (y, x), got shape {locations.shape}")

    delf_features = feature_pb2.DelfFeatures()
    for i in range(num_features):
        feature = delf_features.feature.add()
        feature.y = locations[i, 0]
        feature.x = locations[i, 1]
        feature.scale = scales[i]
        feature.orientation = orientations[i]
        feature.strength = attention[i]
        feature.descriptor.CopyFrom(datum_io.ArrayToDatum(descriptors[i]))
    return delf_features


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


def SerializeToString(locations, scales, descriptors, attention, orientations=None) -> bytes:
    return ArraysToDelfFeatures(
        locations, scales, descriptors, attention, orientations).SerializeToString()


def ParseFromString(string: bytes, source: str = "input") -> FeatureArrays:
    """Parses serialized DelfFeatures into the five arrays; NaN/Inf values raise
    ValueError naming `source`."""
    # Files written by protobuf (ours and the original's) decode in one vectorised
    # pass; any other valid encoding, and every error, goes through protobuf.
    arrays = wire_format.ParseDelfFeatures(string)
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
    for name, array in zip(_ARRAY_NAMES, arrays):
        datum_io.check_finite(array, name, source)
    return arrays


def WriteToFile(file_path: str, locations, scales, descriptors, attention,
                orientations=None) -> None:
    """Writes features to `file_path` (atomically). Note: path comes first."""
    atomic.write_bytes_atomic(
        file_path,
        SerializeToString(locations, scales, descriptors, attention, orientations))


def ReadFromFile(file_path: str) -> FeatureArrays:
    """Reads (locations, scales, descriptors, attention, orientations)."""
    return ParseFromString(atomic.read_bytes(file_path), source=str(file_path))

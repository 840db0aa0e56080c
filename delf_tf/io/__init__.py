"""Bytes <-> arrays for the protobuf file formats (datum, feature, box)."""

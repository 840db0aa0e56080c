"""Bytes <-> arrays for the protobuf file formats (datum, feature, box)."""

__all__: list[str] = []

"""Builds the ``*_pb2`` modules' messages from the committed descriptor set.

``descriptor_set.pb`` is protoc's compiled form of ``protos/*.proto`` (a
``FileDescriptorSet`` with imports, written by ``make protos``). Each
``<name>_pb2`` module registers its file in the default descriptor pool and
builds its message classes through the same ``google.protobuf.internal.builder``
calls protoc's Python gencode makes, so the classes, the pool entries and the
wire format are those of generated code, without gencode's pin to one protobuf
runtime version.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from google.protobuf.internal import builder

__all__ = ["build_messages"]

_SET_PATH = Path(__file__).with_name("descriptor_set.pb")


@functools.cache
def _file_protos() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Every file of the committed set by its name (``delf_tf/protos/<name>.proto``)."""
    file_set = descriptor_pb2.FileDescriptorSet.FromString(_SET_PATH.read_bytes())
    return {file_proto.name: file_proto for file_proto in file_set.file}


def _module_name(proto_name: str) -> str:
    """protoc's rule: ``delf_tf/protos/datum.proto`` -> ``delf_tf.protos.datum_pb2``."""
    return proto_name.removesuffix(".proto").replace("/", ".") + "_pb2"


def _record_serialized_ranges(descriptors, protos, data: bytes, start: int) -> None:
    """Pure-Python runtime only: where each message/enum lies in its file's bytes.

    Its ``Descriptor.CopyToProto`` reads these offsets, which gencode writes as
    literals (``_serialized_start``/``_serialized_end``); here they are found.
    """
    for desc, proto in zip(descriptors, protos, strict=True):
        serialized = proto.SerializeToString()
        desc._serialized_start = data.index(serialized, start)
        desc._serialized_end = start = desc._serialized_start + len(serialized)
        if isinstance(proto, descriptor_pb2.DescriptorProto):
            _record_serialized_ranges(desc.nested_types, proto.nested_type, data,
                                      desc._serialized_start)
            _record_serialized_ranges(desc.enum_types, proto.enum_type, data,
                                      desc._serialized_start)


def build_messages(proto_name: str, module_globals: dict[str, Any]) -> Any:
    """Registers ``proto_name`` and builds its messages into a ``_pb2`` module.

    Args:
      proto_name: the file's name in the set, e.g. ``"delf_tf/protos/box.proto"``.
      module_globals: the ``globals()`` of the module ``_module_name(proto_name)``;
        receives the message classes, enums and ``_<NAME>`` descriptors as gencode's.

    Returns:
      The file's ``FileDescriptor`` (the module's ``DESCRIPTOR``).
    """
    file_proto = _file_protos()[proto_name]
    # Imported files' modules first, as gencode's imports do, so a field of an
    # imported message type uses that module's class.
    for dependency in file_proto.dependency:
        importlib.import_module(_module_name(dependency))
    data = file_proto.SerializeToString()
    file_descriptor = descriptor_pool.Default().AddSerializedFile(data)
    if not descriptor._USE_C_DESCRIPTORS:
        _record_serialized_ranges(file_descriptor.message_types_by_name.values(),
                                  file_proto.message_type, data, 0)
        _record_serialized_ranges(file_descriptor.enum_types_by_name.values(),
                                  file_proto.enum_type, data, 0)
    builder.BuildMessageAndEnumDescriptors(file_descriptor, module_globals)
    builder.BuildTopDescriptorsAndMessages(
        file_descriptor, _module_name(proto_name), module_globals)
    return file_descriptor

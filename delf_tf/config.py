"""Reading DelfConfig / AggregationConfig text-format (pbtxt) files."""

import os
from typing import TypeVar

from google.protobuf import message, text_format

from delf_tf.io import atomic
from delf_tf.protos import aggregation_config_pb2, delf_config_pb2

ProtoT = TypeVar("ProtoT", bound=message.Message)


def ReadConfig(path: str, proto: ProtoT) -> ProtoT:
    """Parses the pbtxt file at `path` into `proto` (merged) and returns it.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file does not parse; the message names the file and carries
        the parser's line:column and the offending field.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such config file: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise ValueError(
            f"Invalid {proto.DESCRIPTOR.name} config {path}: {e}") from e
    return proto


def ReadDelfConfig(path: str) -> delf_config_pb2.DelfConfig:
    """Reads a DelfConfig pbtxt (e.g. configs/r50delg_gld_config.pbtxt)."""
    return ReadConfig(path, delf_config_pb2.DelfConfig())


def ReadAggregationConfig(path: str) -> aggregation_config_pb2.AggregationConfig:
    """Reads an AggregationConfig pbtxt (e.g. configs/index_aggregation_config.pbtxt)."""
    return ReadConfig(path, aggregation_config_pb2.AggregationConfig())


def WriteConfig(path: str, proto: message.Message) -> None:
    """Writes `proto` as pbtxt to `path` atomically."""
    atomic.write_bytes_atomic(path, text_format.MessageToString(proto).encode("utf-8"))

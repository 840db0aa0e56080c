"""Reading DelfConfig / AggregationConfig text-format (pbtxt) files."""

import os
from typing import TypeVar

from google.protobuf import message, text_format

from delf_tf.io import atomic
from delf_tf.protos import aggregation_config_pb2, delf_config_pb2

ProtoT = TypeVar("ProtoT", bound=message.Message)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def PackagedConfigDir() -> str:
    """The folder of the shipped configs: delf_tf/configs in an installed wheel, else the
    checkout's configs/ (next to the delf_tf package)."""
    installed = os.path.join(_PACKAGE_DIR, "configs")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(_PACKAGE_DIR), "configs")


def ListPackagedConfigs() -> list[str]:
    """Names of the shipped configs, e.g. ['delf_config_example', 'r50delg_gld_config', ...]."""
    folder = PackagedConfigDir()
    if not os.path.isdir(folder):
        return []
    return sorted(name[:-len(".pbtxt")] for name in os.listdir(folder) if name.endswith(".pbtxt"))


def ResolveConfigPath(path: str) -> str:
    """Returns `path` if it is a file, else the shipped config it names.

    A shipped config can be named bare (`r50delg_gld_config`), with its extension
    (`r50delg_gld_config.pbtxt`) or as in a checkout (`configs/r50delg_gld_config.pbtxt`),
    so commands written for a checkout also work from an installed wheel in any folder.
    Raises FileNotFoundError listing the shipped names when neither exists.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    folder, name = os.path.split(path)
    if folder in ("", "configs") and name:
        if not name.endswith(".pbtxt"):
            name += ".pbtxt"
        shipped = os.path.join(PackagedConfigDir(), name)
        if os.path.isfile(shipped):
            return shipped
    raise FileNotFoundError(
        f"No such config file: {path} (shipped configs, usable by name: "
        f"{', '.join(ListPackagedConfigs()) or 'none found'})")


def ReadConfig(path: str, proto: ProtoT) -> ProtoT:
    """Parses the pbtxt file at `path` into `proto` (merged) and returns it.

    `path` may also name a shipped config (see ResolveConfigPath).

    Raises:
      FileNotFoundError: no such file and no shipped config of that name.
      ValueError: the file does not parse; the message names the file and carries
        the parser's line:column and the offending field.
    """
    path = ResolveConfigPath(path)
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

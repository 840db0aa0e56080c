"""Reading DelfConfig / AggregationConfig text-format (pbtxt) files."""

import math
import os
from typing import TypeVar

from google.protobuf import message, text_format

from delf_tf import checks
from delf_tf.io import atomic
from delf_tf.protos import aggregation_config_pb2, delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "PackagedConfigDir", "ListPackagedConfigs", "ResolveConfigPath", "ReadConfig",
    "ReadDelfConfig", "ValidateDelfConfig", "ReadAggregationConfig", "WriteConfig",
]

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
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"Invalid {proto.DESCRIPTOR.name} config {path}: not a text "
                         f"(pbtxt) file ({e})") from e
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise ValueError(
            f"Invalid {proto.DESCRIPTOR.name} config {path}: {e}") from e
    return proto


def ReadDelfConfig(path: str) -> delf_config_pb2.DelfConfig:
    """Reads a DelfConfig pbtxt (e.g. configs/r50delg_gld_config.pbtxt) and checks its
    values (ValidateDelfConfig; the error names the file)."""
    config = ReadConfig(path, delf_config_pb2.DelfConfig())
    try:
        ValidateDelfConfig(config)
    except ValueError as e:
        raise ValueError(f"Invalid DelfConfig {path}: {e}") from None
    return config


def ValidateDelfConfig(config: delf_config_pb2.DelfConfig) -> None:
    """Raises ValueError naming the field and value of an invalid DelfConfig setting.

    image_scales must be finite and > 0 (empty is allowed for a model without
    scale input), max_image_size negative (no limit) or > 0, and with
    local features: max_feature_num >= 0, iou_threshold in (0, 1], a finite
    score_threshold.
    """
    for value in config.image_scales:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"image_scales must hold finite numbers > 0, got {value:g} in "
                             f"{list(config.image_scales)}")
    if config.max_image_size == 0:
        raise ValueError("max_image_size must be > 0, or negative for no limit, got 0")
    if config.use_local_features:
        local = config.delf_local_config
        checks.non_negative("delf_local_config.max_feature_num", local.max_feature_num)
        checks.in_range("delf_local_config.iou_threshold", local.iou_threshold, 0.0, 1.0,
                        low_inclusive=False)
        checks.finite("delf_local_config.score_threshold", local.score_threshold)


def ReadAggregationConfig(path: str) -> aggregation_config_pb2.AggregationConfig:
    """Reads an AggregationConfig pbtxt (e.g. configs/index_aggregation_config.pbtxt)."""
    return ReadConfig(path, aggregation_config_pb2.AggregationConfig())


def WriteConfig(path: str, proto: message.Message) -> None:
    """Writes `proto` as pbtxt to `path` atomically."""
    atomic.write_bytes_atomic(path, text_format.MessageToString(proto).encode("utf-8"))

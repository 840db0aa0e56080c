"""absl flags derived from a typed config dataclass: each fact about a setting written once.

A tool whose settings are the fields of a config dataclass (`trainer.TrainConfig`,
`TrainGlobalConfig`, `DemoConfig`, ...) does not declare them one by one:

    _CONFIG = config_flags.define_config_flags(trainer.TrainConfig)
    ...
    trainer.Train(_CONFIG.config())

defines one flag per field, named as the field, of the field's type, with the field's default,
and with the help text of the field's entry in the class docstring's Google-style `Attributes:`
section (so the API documentation and `--help` say the same). The field's annotation picks the
flag: bool -> DEFINE_boolean, int -> DEFINE_integer, float -> DEFINE_float, str ->
DEFINE_string, `Literal["a", "b"]` -> DEFINE_enum with those choices, `T | None` -> the flag of
T (default None), `tuple[T, ...]` / `list[T]` -> DEFINE_list (comma-separated, each item
converted to T when the config is built). A field used as a flag without an `Attributes:`
entry is an error when the flags are defined, naming the class and the field.

As every flag group of the tools (delf_tf/tools/__init__.py), `define_config_flags` is called
at the tool module's import, never at this module's own, and the flags are key flags of the
calling tool (listed by its `--help`).
"""

import dataclasses
import re
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

from absl import flags

__all__ = ["ConfigFlags", "attribute_docs", "define_config_flags", "list_value"]

# The DEFINE calls below are made for the tool that calls define_config_flags (its key flags).
flags.disclaim_key_flags()

C = TypeVar("C")

_SCALAR_DEFINES = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                   float: flags.DEFINE_float, str: flags.DEFINE_string}
_SECTION = re.compile(r"^(\s*)Attributes:\s*$")
_ENTRY = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def attribute_docs(config_type: type) -> dict[str, str]:
    """{field name: text} of the `Attributes:` sections of `config_type`'s docstring and its
    base classes' (a subclass's entry wins); an entry's lines joined by single spaces."""
    docs: dict[str, str] = {}
    for klass in reversed(config_type.__mro__):
        docs.update(_parse_attributes(klass.__dict__.get("__doc__") or ""))
    return docs


def _parse_attributes(docstring: str) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    lines = docstring.expandtabs().splitlines()
    section_indent = None
    entry_indent = None
    name = None
    for line in lines:
        if section_indent is None:
            match = _SECTION.match(line)
            if match:
                section_indent = len(match.group(1))
            continue
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= section_indent:
            break  # the next section
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(line.strip())
        if indent == entry_indent and match:
            name = match.group(1)
            entries[name] = [match.group(2)]
        elif name is not None:
            entries[name].append(line.strip())
    return {key: " ".join(part for part in parts if part) for key, parts in entries.items()}


@dataclasses.dataclass(frozen=True)
class _FieldFlag:
    """One config field's flag and how its value becomes the field's."""

    holder: flags.FlagHolder
    item_type: type | None = None   # list flags: the type each item is converted to
    container: type | None = None   # list flags: tuple or list
    length: int | None = None       # fixed-length tuples: their length

    def value(self) -> Any:
        """The flag's value as the field takes it; UsageError naming the flag if it is not one."""
        if self.container is None or self.holder.value is None:
            return self.holder.value
        return list_value(self.holder, self.item_type, self.container, self.length)


def list_value(holder: flags.FlagHolder, item_type: type, container: type = tuple,
               length: int | None = None) -> Any:
    """A DEFINE_list flag's items converted to `item_type`, as a `container` (of `length` items
    if given); app.UsageError naming the flag if they are not."""
    from absl import app  # not at import: absl.app defines flags of its own when imported

    try:
        items = container(item_type(item) for item in holder.value)
    except ValueError as error:
        raise app.UsageError(f"--{holder.name}: {error}") from None
    if length is not None and len(items) != length:
        raise app.UsageError(f"--{holder.name} takes {length} values, got {len(items)}")
    return items


@dataclasses.dataclass(frozen=True)
class ConfigFlags(Generic[C]):
    """The flags of some fields of `config_type` (one per field, named as the field)."""

    config_type: type[C]
    fields: Mapping[str, _FieldFlag]

    @property
    def holders(self) -> tuple[flags.FlagHolder, ...]:
        """The FlagHolders, in the fields' order."""
        return tuple(field.holder for field in self.fields.values())

    def values(self) -> dict[str, Any]:
        """{field name: value} from the flags (list flags converted to the field's type)."""
        return {name: field.value() for name, field in self.fields.items()}

    def explicit(self) -> list[str]:
        """Names of the flags given on the command line."""
        return [name for name, field in self.fields.items() if field.holder.present]

    def config(self, **overrides: Any) -> C:
        """config_type(**flag values, **overrides); fields without a flag keep their defaults."""
        return self.config_type(**{**self.values(), **overrides})

    @property
    def value(self) -> C:
        """The config of the flags' values (as a FlagHolder's `.value`)."""
        return self.config()


def define_config_flags(config_type: type[C], *, only: Sequence[str] | None = None,
                        exclude: Collection[str] = (),
                        choices: Mapping[str, Sequence[str]] | None = None,
                        defaults: Mapping[str, Any] | None = None,
                        help_suffix: str = "",
                        flag_values: flags.FlagValues = flags.FLAGS) -> ConfigFlags[C]:
    """Defines a flag for each field of the dataclass `config_type` (those of `only`, in that
    order, else all but `exclude`) and returns them as a ConfigFlags.

    choices: {field: allowed values} for str fields whose choices are known at run time
      (DEFINE_enum). defaults: {field: default} where the tool's default differs from the
      class's. help_suffix: appended to every help text (e.g. how a flag acts in this tool).
      flag_values: where the flags are defined (absl's global FLAGS; tests pass their own).
    Raises TypeError (a programming error: at the tool's import) for a field without an
    `Attributes:` entry, a field without a default (in the class or `defaults`) or an
    annotation this does not map.
    """
    all_fields = {field.name: field for field in dataclasses.fields(config_type)}
    names = list(only) if only is not None else [n for n in all_fields if n not in exclude]
    unknown = [name for name in [*names, *exclude, *(choices or {}), *(defaults or {})]
               if name not in all_fields]
    if unknown:
        raise TypeError(f"{config_type.__name__} has no field(s) {unknown}")
    hints = typing.get_type_hints(config_type)
    docs = attribute_docs(config_type)
    defined = {}
    for name in names:
        if name not in docs:
            raise TypeError(f"{config_type.__name__}.{name} has no entry in the `Attributes:` "
                            "section of its docstring (the flag's help text)")
        default = (defaults[name] if defaults and name in defaults
                   else _default(config_type, all_fields[name]))
        defined[name] = _define(name, hints[name], default, docs[name] + help_suffix,
                                (choices or {}).get(name), config_type, flag_values)
    return ConfigFlags(config_type, types.MappingProxyType(defined))


def _default(config_type: type, field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{config_type.__name__}.{field.name} has no default, so it cannot be a flag")


def _define(name: str, annotation: Any, default: Any, help_text: str,
            choices: Sequence[str] | None, config_type: type,
            flag_values: flags.FlagValues) -> _FieldFlag:
    """The flag of one field: its DEFINE picked by the annotation (Optional unwrapped)."""
    annotation = _without_none(annotation)
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if choices is not None or origin is Literal:
        return _FieldFlag(flags.DEFINE_enum(
            name, default, list(choices if choices is not None else arguments),
            help_text, flag_values=flag_values))
    if annotation in _SCALAR_DEFINES:
        return _FieldFlag(_SCALAR_DEFINES[annotation](
            name, default,
            help_text, flag_values=flag_values))
    if origin in (tuple, list) and arguments:
        item_types = set(arguments) - {Ellipsis}
        if len(item_types) == 1 and next(iter(item_types)) in _SCALAR_DEFINES:
            item_type = next(iter(item_types))
            length = len(arguments) if origin is tuple and Ellipsis not in arguments else None
            return _FieldFlag(flags.DEFINE_list(
                name, None if default is None else [str(item) for item in default],
                help_text, flag_values=flag_values), item_type, origin, length)
    raise TypeError(f"{config_type.__name__}.{name}: no flag type for the annotation "
                    f"{annotation!r}")


def _without_none(annotation: Any) -> Any:
    """T for `T | None` / Optional[T]; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(arguments) == 1:
            return arguments[0]
    return annotation

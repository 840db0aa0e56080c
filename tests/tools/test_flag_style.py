"""The one flag style of the tools (delf_tf/tools/__init__.py): module-level FlagHolders read
through .value, one layout of each DEFINE call, help texts that are sentences (for the flags
derived from a config dataclass: the `Attributes:` entries of its docstring)."""

import ast
import dataclasses
import importlib
import os
import pathlib

import pytest

from delf_tf import tools
from delf_tf.tools import config_flags

_TOOLS_PACKAGE = os.path.dirname(os.path.abspath(tools.__file__))
_MODULES = sorted(name for name in os.listdir(_TOOLS_PACKAGE) if name.endswith(".py"))


def _define_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE_") and node.func.attr != "DEFINE_alias"):
            yield node


def _help(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "help":
            return keyword.value
    return call.args[3 if call.func.attr in ("DEFINE_enum", "DEFINE_multi_enum") else 2] \
        if len(call.args) > 2 else None


@pytest.mark.parametrize("module", _MODULES)
def test_flag_style(module):
    with open(os.path.join(_TOOLS_PACKAGE, module), encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "FLAGS":
            bad.append(f"line {node.lineno}: FLAGS.{node.attr} (read a FlagHolder's .value)")
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and node.value in set(_define_calls(node)):
            bad.append(f"line {node.lineno}: a DEFINE whose FlagHolder is dropped")
    for call in _define_calls(tree):
        name, help_text = call.args[0] if call.args else None, _help(call)
        if name is None or help_text is None:
            bad.append(f"line {call.lineno}: DEFINE without positional name, default and help")
            continue
        before_help = [a for a in call.args if a is not help_text]
        if name.lineno != call.lineno + 1 or help_text.lineno != max(
                a.end_lineno for a in before_help) + 1:
            bad.append(f"line {call.lineno}: layout is `_X = flags.DEFINE_t(` / name, default "
                       "(and choices) / help")
        if isinstance(help_text, ast.Constant) and not help_text.value.rstrip().endswith(
                (".", ".)")):
            bad.append(f"line {call.lineno}: help text is not a sentence: {help_text.value!r}")
    assert not bad, f"delf_tf/tools/{module}:\n" + "\n".join(bad)


def _config_classes(module: str) -> list[type]:
    """The config dataclasses a tool module (or flag-group module) passes to
    config_flags.define_config_flags, resolved through its `from X import Y` imports."""
    with open(os.path.join(_TOOLS_PACKAGE, module), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = {alias.asname or alias.name: f"{node.module}.{alias.name}"
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    classes = []
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "define_config_flags"):
            owner, _, name = ast.unparse(call.args[0]).rpartition(".")
            # `module.Class` (`from package import module`) or `Class` (`from module import Class`)
            module = imported[owner] if owner else imported[name].rpartition(".")[0]
            classes.append(getattr(importlib.import_module(module), name))
    return classes


_CONFIG_MODULES = [module for module in _MODULES if module != "config_flags.py" and
                   "define_config_flags(" in pathlib.Path(_TOOLS_PACKAGE, module).read_text(
                       encoding="utf-8")]


def test_config_derived_flags_exist():
    assert {"train.py", "train_global_features.py", "train_how.py", "make_demo_data.py",
            "run_demo.py", "extraction_flags.py", "build_global_index.py",
            "retrieval_flags.py", "search.py"} <= set(_CONFIG_MODULES)


@pytest.mark.parametrize("module", _CONFIG_MODULES)
def test_config_fields_have_sentence_helps(module):
    """Every field of a config class whose fields become flags has an `Attributes:` entry in
    the class docstring (the flag's help) that is a sentence, ending in a period as every
    DEFINE's help."""
    bad = []
    for config_type in _config_classes(module):
        docs = config_flags.attribute_docs(config_type)
        for field in dataclasses.fields(config_type):
            text = docs.get(field.name, "")
            if not text.rstrip().endswith((".", ".)")):
                bad.append(f"{config_type.__name__}.{field.name}: {text!r}")
    assert not bad, f"delf_tf/tools/{module}:\n" + "\n".join(bad)

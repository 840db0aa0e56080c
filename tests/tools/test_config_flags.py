"""delf_tf/tools/config_flags.py: one absl flag per field of a config dataclass, with the field's
name, type and default and the help of its docstring's `Attributes:` entry."""

import dataclasses
import os
import subprocess
import sys
from typing import Literal

import pytest
from absl import app, flags

from delf_tf.tools import config_flags

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class _Base:
    """Settings of a small job.

    Attributes:
      count: How many things are counted; a help
        text over two lines.
      rate: The rate.
      name (str): The name.
      verbose: Whether to talk.
    """

    count: int = 3
    rate: float = 0.5
    name: str = "x"
    verbose: bool = False


@dataclasses.dataclass(frozen=True)
class _Job(_Base):
    """The job: the base's fields and its own.

    Attributes:
      mode: The mode.
      limit: An optional limit.
      path: An optional path.
      scales: The scales.
      sizes: Three sizes.
      tags: The tags.
      strategy: The strategy, chosen at run time.

    Returns:
      nothing: this section is not read.
    """

    rate: float = 0.25          # a subclass's default; the base's help
    mode: Literal["fast", "slow"] = "fast"
    limit: int | None = None
    path: str | None = None
    scales: tuple[float, ...] = (1.0, 0.5)
    sizes: tuple[int, int, int] = (1, 2, 3)
    tags: list[str] = dataclasses.field(default_factory=lambda: ["a", "b"])
    strategy: str = "one"


@dataclasses.dataclass
class _Undocumented:
    """Attributes:
      documented: Has a help text.
    """

    documented: int = 1
    undocumented: int = 2


def _define(**options) -> tuple[flags.FlagValues, config_flags.ConfigFlags]:
    flag_values = flags.FlagValues()
    group = config_flags.define_config_flags(_Job, flag_values=flag_values,
                                             choices={"strategy": ["one", "two"]}, **options)
    return flag_values, group


def test_one_flag_per_field_with_its_type_default_and_docstring_help():
    flag_values, group = _define()
    assert [holder.name for holder in group.holders] == [f.name for f in dataclasses.fields(_Job)]
    expected = {  # name: (absl flag type, default, help without an enum's "<choices>: ")
        "count": ("int", 3, "How many things are counted; a help text over two lines."),
        "rate": ("float", 0.25, "The rate."),
        "name": ("string", "x", "The name."),
        "verbose": ("bool", False, "Whether to talk."),
        "mode": ("string enum", "fast", "The mode."),
        "limit": ("int", None, "An optional limit."),
        "path": ("string", None, "An optional path."),
        "scales": ("comma separated list of strings", ["1.0", "0.5"], "The scales."),
        "sizes": ("comma separated list of strings", ["1", "2", "3"], "Three sizes."),
        "tags": ("comma separated list of strings", ["a", "b"], "The tags."),
        "strategy": ("string enum", "one", "The strategy, chosen at run time."),
    }
    for name, (flag_type, default, help_text) in expected.items():
        flag = flag_values[name]
        assert (flag.flag_type(), flag.default) == (flag_type, default), name
        assert flag.help.split(">: ")[-1] == help_text, name
    assert flag_values["mode"].parser.enum_values == ["fast", "slow"]
    assert flag_values["strategy"].parser.enum_values == ["one", "two"]
    # Unparsed defaults build the class's default config.
    flag_values(["prog"])
    assert group.config() == group.value == _Job()
    assert group.explicit() == []


def test_round_trip_from_the_command_line_to_the_config():
    flag_values, group = _define()
    flag_values(["prog", "--count=7", "--rate=2.5", "--name=y", "--verbose", "--mode=slow",
                 "--limit=4", "--path=/p", "--scales=2,0.25", "--sizes=4,5,6", "--tags=c",
                 "--strategy=two"])
    assert group.config() == _Job(count=7, rate=2.5, name="y", verbose=True, mode="slow",
                                  limit=4, path="/p", scales=(2.0, 0.25), sizes=(4, 5, 6),
                                  tags=["c"], strategy="two")
    assert group.config(count=9).count == 9  # overrides win over the flags
    assert set(group.explicit()) == {holder.name for holder in group.holders}


def test_bad_values_are_refused_naming_the_flag():
    flag_values, group = _define()
    with pytest.raises(flags.IllegalFlagValueError, match="mode"):
        flag_values(["prog", "--mode=medium"])
    flag_values, group = _define()
    flag_values(["prog", "--scales=1,big"])
    with pytest.raises(app.UsageError, match="--scales"):
        group.config()
    flag_values, group = _define()
    flag_values(["prog", "--sizes=1,2"])
    with pytest.raises(app.UsageError, match="--sizes takes 3 values, got 2"):
        group.config()


def test_only_exclude_defaults_and_help_suffix():
    flag_values, group = _define(only=("mode", "count"), defaults={"count": 11},
                                 help_suffix=" More.")
    assert [holder.name for holder in group.holders] == ["mode", "count"]
    assert "rate" not in flag_values
    assert flag_values["count"].default == 11
    assert flag_values["count"].help.endswith("two lines. More.")
    flag_values(["prog"])
    assert group.config() == _Job(count=11)  # fields without a flag keep the class's default
    _, group = _define(exclude=("tags", "scales"))
    assert {"tags", "scales"}.isdisjoint(holder.name for holder in group.holders)


def test_a_field_without_an_attributes_entry_is_an_error_naming_it():
    with pytest.raises(TypeError, match=r"_Undocumented\.undocumented"):
        config_flags.define_config_flags(_Undocumented, flag_values=flags.FlagValues())
    for misspelt in ({"only": ("nope",)}, {"exclude": ("nope",)}, {"defaults": {"nope": 1}}):
        with pytest.raises(TypeError, match=r"no field\(s\) \['nope'\]"):
            config_flags.define_config_flags(_Job, flag_values=flags.FlagValues(), **misspelt)


def test_attribute_docs_reads_the_class_and_its_bases():
    docs = config_flags.attribute_docs(_Job)
    assert docs["count"] == "How many things are counted; a help text over two lines."
    assert docs["strategy"] == "The strategy, chosen at run time."
    assert "nothing" not in docs  # other sections are not attributes


def test_importing_the_module_defines_no_flag():
    script = ("from absl import flags\nbefore = set(flags.FLAGS)\n"
              "from delf_tf.tools import config_flags\nassert set(flags.FLAGS) == before\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=_REPO), timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_kmeans_help_states_where_auto_switches_to_approximate():
    from delf_tf.aggregation import asmk_index

    help_text = config_flags.attribute_docs(asmk_index.CodebookParams)["kmeans"]
    assert f"'approximate' from {asmk_index.APPROXIMATE_MIN_WORDS} words on" in help_text

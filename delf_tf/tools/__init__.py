"""The command-line tools: one absl module per job, each with `main(argv)`.

Every tool in `TOOLS` can be run four ways, all the same program:

    delf-extract-features --help              # console script (pip install)
    python -m delf_tf.tools.extract_features --help
    python -m delf_tf extract_features --help
    python tools/extract_features.py --help   # from a checkout: a 4-line shim

Adding a tool: write `delf_tf/tools/<name>.py` (absl flags at module level, `def main(argv)`,
`if __name__ == "__main__": app.run(main)`), add `"<name>"` to `TOOLS` below, and copy any
shim in `tools/` to `tools/<name>.py` with the name changed. setup.py reads `TOOLS` and makes
the console script `delf-<name with dashes>`; tests/tools/test_registry.py checks that the
module, the shim and the entry point all exist.

Importing this package defines no flags and imports no TensorFlow; a tool's flags are
defined when its own module is imported, so one process runs one tool.

The flag style of every tool:

- Flags are module-level FlagHolders of the tool module, read through `.value`:

      _OUTPUT_DIR = flags.DEFINE_string(
          "output_dir", "/tmp/retrieval",
          "Directory where metrics.txt and the rankings (.npy) are written.")

  never a bare `flags.DEFINE_x(...)` read back as `FLAGS.x`. Each DEFINE call has this one
  layout: the holder on the first line; the name, the default (and an enum's choices) on
  the second; the help text, a full sentence ending in a period, from the third.
- Flags that several tools share are defined as a group by a function of a shared module
  (`retrieval_flags.define_verification_flags(...)`,
  `extraction_flags.define_export_flags(...)`),
  called at the tool module's import, never at the shared module's own import (tests import
  several tools in one process and delete each one's flags in between). The function returns
  a frozen object of the group's FlagHolders whose methods build the library's parameter
  object (`_VERIFICATION.params()` -> `VerificationParams`), so a parameter group is built
  once here and passed whole. A shared module calls `flags.disclaim_key_flags()` at its top,
  which makes the group's flags the calling tool's own (its key flags, listed by `--help`).
- Flags whose settings are the fields of a typed config dataclass (`trainer.TrainConfig`,
  `TrainGlobalConfig`, `DemoConfig`, ...) are not declared one by one: they are derived from
  the class, `_CONFIG = config_flags.define_config_flags(trainer.TrainConfig)`, one flag per
  field with the field's name, type (a `Literal[...]` is an enum) and default, and the help of
  the field's entry in the class docstring's `Attributes:` section; `_CONFIG.config()` builds
  the config from the flags.
- A flag keeps its name and default when it moves into a group: users' scripts use them.
  tests/tools/test_flag_style.py checks the holders, the layout and the help sentences.
- `main(argv)` starts with `common.configure_logging()` and `common.check_no_arguments(argv)`
  and runs its work inside `with common.reported_errors():`, the one error wrapper: input
  errors (missing or broken files, bad values) end the tool with one `Error: ...` line and
  exit status 1. The work is one library call (orchestration belongs in the library); main
  only builds its arguments from the flags and prints what it returned.
"""

import importlib
import sys
from typing import NoReturn

__all__ = ["TOOLS", "script_name", "run_tool"]

# One line per tool (module name in delf_tf/tools/; console script delf-<name-with-dashes>).
TOOLS = (
    "build_image_dataset",
    "train",
    "import_original_weights",
    "export_local_model",
    "export_global_model",
    "export_local_and_global_model",
    "write_config",
    "extract_features",
    "extract_delg_features",
    "beam_extract_features",
    "beam_extract_aggregation",
    "beam_sample_descriptors",
    "match_images",
    "draw_visual_words",
    "perform_retrieval",
    "search",
    "build_global_index",
    "query_global_index",
    "compute_retrieval_metrics",
    "compute_recognition_metrics",
    "cluster_delf_features",
    "extract_aggregation",
    "perform_aggregated_retrieval",
    "train_asmk_codebook",
    "build_asmk_index",
    "query_asmk_index",
    "export_elfm_model",
    "extract_elfm_features",
    "build_elfm_index",
    "perform_elfm_retrieval",
    "draw_elfm_match_map",
    "train_how",
    "export_how_model",
    "train_global_features",
    "export_global_features_model",
    "make_demo_data",
    "run_demo",
)


def script_name(tool: str) -> str:
    """Console-script name of a tool: 'extract_features' -> 'delf-extract-features'."""
    return "delf-" + tool.replace("_", "-")


def run_tool(tool: str) -> NoReturn:
    """Runs tool `tool` (a name in TOOLS) on sys.argv, as `python delf_tf/tools/<tool>.py` would.

    Used by the console scripts and the tools/*.py shims, whose `__main__` module is not the
    tool's module: the tool's flags are declared key flags of the running script (so `--help`
    lists them) and its docstring becomes the usage text.
    """
    if tool not in TOOLS:
        sys.exit(f"Unknown delf_tf tool {tool!r}; the tools are: {', '.join(TOOLS)}")
    from absl import app, flags  # pylint: disable=g-import-not-at-top

    module = importlib.import_module(f"{__name__}.{tool}")
    for flag in flags.FLAGS.get_key_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules.get("__main__")
    if main_module is not None and module.__doc__:
        main_module.__doc__ = module.__doc__
    app.run(module.main)
    raise AssertionError("unreachable: app.run exits")

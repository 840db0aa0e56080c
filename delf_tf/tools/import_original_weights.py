"""Imports weights of the original DELF/DELG (TF2) into a delf_tf checkpoint with sidecar.

Accepts the original's `<logdir>/delf_weights` (Keras-2 save_weights), a training checkpoint
`<logdir>/delf_tf2-ckpt/ckpt-N` (or the delf_tf2-ckpt directory: its latest checkpoint), or an
exported SavedModel directory. The model (DELF or DELG, backbone depth, autoencoder and
embedding sizes, classes) is read from the weights; every source variable no model variable
takes, and every model variable the source lacks, is listed. The output is what training
writes (`<output_prefix>.index/.data-*` + `<output_prefix>.json`), so the export tools,
`--imagenet_checkpoint`-free fine-tuning and `load_model` use it directly.

  python tools/import_original_weights.py --source_path=/tmp/delg/delf_weights \\
      --output_prefix=/tmp/delg_tf/delf_weights
  python tools/export_local_and_global_model.py --ckpt_path=/tmp/delg_tf/delf_weights \\
      --export_path=/tmp/delg_tf/export
"""

import os
import sys

from absl import app, flags

from delf_tf.models import original_weights
from delf_tf.tools import common, config_flags

__all__ = ["main"]

_SOURCE_PATH = flags.DEFINE_string(
    "source_path", None,
    "The original's weights: a checkpoint prefix (delf_weights, ckpt-N), a checkpoint directory "
    "(delf_tf2-ckpt) or a SavedModel directory.")
_OUTPUT_PREFIX = flags.DEFINE_string(
    "output_prefix", None,
    "delf_tf checkpoint prefix to write (plus <output_prefix>.json).")
# One flag per ImportOptions field: its name, type, default and help (the class docstring).
_OPTIONS = config_flags.define_config_flags(original_weights.ImportOptions)
_OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False,
    "Replace an existing checkpoint at --output_prefix.")
flags.mark_flags_as_required(["source_path", "output_prefix"])


@common.tool_main
def main():
    output_prefix = _OUTPUT_PREFIX.value
    if os.path.exists(output_prefix + ".index") and not _OVERWRITE.value:
        sys.exit(f"Error: --output_prefix={output_prefix} already holds a checkpoint; "
                 "pass --overwrite to replace it")
    _, report = original_weights.import_original_weights(
        _SOURCE_PATH.value, output_prefix, _OPTIONS.config())
    print(report.summary())
    print(f"Wrote {output_prefix} (+ .json)")


if __name__ == "__main__":
    app.run(main)

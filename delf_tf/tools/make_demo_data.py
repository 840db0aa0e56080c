"""Renders the embedded demo landmark data set from scikit-image's bundled photos.

Writes GLDv2-style training images and CSVs and a Revisited-style query/index set
with its ground-truth .mat file (see delf_tf/data/demo.py for the layout).

Example:
  python tools/make_demo_data.py --output_dir=/tmp/delf_demo/data
"""

import dataclasses

from absl import app, flags

from delf_tf.data import demo
from delf_tf.tools import common, config_flags

__all__ = ["main"]

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Directory to write the data set into.")
# One flag per DemoConfig field: its name, type, default and help (the class's docstring).
_CONFIG = config_flags.define_config_flags(demo.DemoConfig)


@common.tool_main
def main():
    if not _OUTPUT_DIR.value:
        raise app.UsageError("--output_dir is required")
    config = _CONFIG.config()
    try:
        config.validate()
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    dataset = demo.GenerateDemoDataset(_OUTPUT_DIR.value, config)
    print(f"Wrote {dataset.train_csv_path}, {dataset.train_clean_csv_path} and "
          f"{dataset.dataset_file_path} ({dataclasses.asdict(config)})")


if __name__ == "__main__":
    app.run(main)

"""Shim: runs the tool of this name in delf_tf/tools/ (the console script delf-<name>)."""
from delf_tf.tools import run_tool

if __name__ == "__main__":
    run_tool("beam_extract_aggregation")

"""`python -m delf_tf TOOL [flags]` runs a tool; `python -m delf_tf` lists them."""

import sys

from delf_tf import tools

__all__: list[str] = []


def _main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print("usage: python -m delf_tf TOOL [--flag=value ...]   (TOOL --help for its flags)\n")
        print("tools (also installed as console scripts):")
        for tool in tools.TOOLS:
            print(f"  {tool:32s} {tools.script_name(tool)}")
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    tool = sys.argv[1].replace("-", "_")
    if tool.startswith("delf_"):
        tool = tool[len("delf_"):]
    sys.argv = [f"{sys.argv[0]} {sys.argv[1]}"] + sys.argv[2:]
    tools.run_tool(tool)


if __name__ == "__main__":
    _main()

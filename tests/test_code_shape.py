"""Shape rules of the library code: no function in delf_tf/ longer than 60 lines
(split longer ones into named steps), and no reference to a private design document
("SPEC §N") in code, docstrings or --help, and a declared public surface (`__all__`)
in every module."""

import ast
import importlib
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "delf_tf"
MAX_FUNCTION_LINES = 60


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if not p.name.endswith("_pb2.py"))


def test_no_function_over_60_lines():
    too_long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                    f"{node.name} ({lines} lines)")
    assert not too_long, "split into named steps:\n" + "\n".join(too_long)


def test_the_check_counts_lines(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def f():\n{body}\n")
    node = tree.body[0]
    assert node.end_lineno - node.lineno + 1 == MAX_FUNCTION_LINES + 1


@pytest.mark.parametrize("root", ["delf_tf", "tools"])
def test_no_private_spec_references(root):
    pattern = re.compile(r"\bSPEC\s*§")
    hits = [f"{p}:{i}" for p in sorted((PACKAGE.parent / root).rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def test_every_module_declares_its_public_names():
    """Each module's `__all__` exists, lists only names the module defines or imports,
    and leaves out no public function or class defined there."""
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        declared = [node for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                    and "__all__" in _top_level_names(ast.Module([node], []))]
        where = path.relative_to(PACKAGE.parent)
        if not declared:
            problems.append(f"{where}: no __all__")
            continue
        listed = set(ast.literal_eval(declared[0].value))
        problems += [f"{where}: __all__ names undefined {n}"
                     for n in sorted(listed - _top_level_names(tree))]
        public = {node.name for node in tree.body
                  if isinstance(node, ast.FunctionDef | ast.ClassDef)
                  and not node.name.startswith("_")}
        problems += [f"{where}: public {n} not in __all__" for n in sorted(public - listed)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", [
    "delf_tf.binary_codes", "delf_tf.progress", "delf_tf.io.files", "delf_tf.io.revisited",
    "delf_tf.matching.params", "delf_tf.matching.reranking", "delf_tf.models.registry",
    "delf_tf.retrieval.dataset", "delf_tf.retrieval.evaluation", "delf_tf.tools.common",
    "delf_tf.data.demo", "delf_tf.tools.demo_workflow"])
def test_declared_public_names_exist(module):
    imported = importlib.import_module(module)
    assert imported.__all__ and all(hasattr(imported, name) for name in imported.__all__)

"""Imports point one way: ir <- passes <- codegen <- runtime <- flowjit (ARCHITECTURE.md).

Each folder installs as a part of the one package `flowjit`: `compiler/` is `flowjit`
itself, the others `flowjit.ir`, `flowjit.passes`, `flowjit.codegen`, `flowjit.runtime`.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDER_OF_PART = {"flowjit.ir": "ir", "flowjit.passes": "passes",
                  "flowjit.codegen": "codegen", "flowjit.runtime": "runtime"}
ALLOWED = {
    "ir": set(),
    "passes": {"ir"},
    "codegen": {"ir"},
    "runtime": {"ir", "codegen"},
    "compiler": {"ir", "passes", "codegen", "runtime"},
}
# Names a module of ours must never import: the old top-level names, which may belong to
# unrelated installed packages.
BARE_NAMES = {"compiler", "ir", "passes", "codegen", "runtime"}


def _imported(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(folders of flowjit that `path` imports, bare top-level names it imports)."""
    tree = ast.parse(path.read_text())
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    folders, bare = set(), set()
    for name in modules:
        top = name.split(".")[0]
        if top in BARE_NAMES:
            bare.add(top)
        elif top == "flowjit":
            part = ".".join(name.split(".")[:2])
            folders.add(FOLDER_OF_PART.get(part, "compiler"))
    return folders, bare


def _sources(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_point_one_way(folder):
    bad = {}
    for path in _sources(folder):
        folders, _ = _imported(path)
        wrong = folders - ALLOWED[folder] - {folder}
        if wrong:
            bad[str(path.relative_to(ROOT))] = sorted(wrong)
    assert bad == {}


@pytest.mark.parametrize("folder", sorted(ALLOWED) + ["tests", "bench", "examples"])
def test_nothing_imports_the_old_top_level_names(folder):
    bad = {str(p.relative_to(ROOT)): sorted(_imported(p)[1]) for p in _sources(folder)
           if _imported(p)[1]}
    assert bad == {}

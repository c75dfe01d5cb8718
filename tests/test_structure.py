"""The shape of the package (docs/architecture.md), read from the source with ``ast``.

* Imports at module level form no cycle, and flow one way down :data:`STAGES`: a
  module imports only from its own stage and the stages above it.
* No module is longer than :data:`MAX_MODULE_LINES`, no class than :data:`MAX_CLASS_LINES`.
* No function imports a scaffoldfem module, except in the entry points cli.py and
  api/ (:data:`LAZY_OK`), which import their command implementations lazily so
  ``scaffoldfem check`` starts without DOLFINx. Optional heavy third-party imports
  inside functions are fine.
* The top-level utilities and config/ import no DOLFINx, PETSc or UFL; importing
  the command line loads none of them, transitively (the one check that imports:
  in a subprocess).

The other checks import nothing: they read files, so they run in a blink.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import clean_env

PACKAGE = "scaffoldfem"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: The stages, top first. A name is a top-level module (``errors`` = errors.py) or a
#: subpackage (``fem`` = everything under fem/). Modules of one stage may import each
#: other (no cycles); they may import any stage above, never one below.
STAGES: list[tuple[str, ...]] = [
    ("errors", "units", "regions", "mpi", "files"),  # top-level utilities
    ("config",),
    ("physics",),  # the laws: UFL forms, pointwise NumPy updates (no PETSc)
    ("fem",),  # compat, solver (the only PETSc module), locate, gather, sampling
    ("geometry",),  # OCC model, meshing, mesh loading
    ("model",),
    ("axons",),
    ("run",),
    ("sweep",),
    ("viz",),
    ("bench",),
    ("cli", "api"),  # entry points
]
#: The package's ``__init__`` is imported before every module (it loads MPI before
#: DOLFINx), so it may import no scaffoldfem module; ``__main__`` is an entry point.
INIT, MAIN = PACKAGE, f"{PACKAGE}.__main__"
#: Entry points (modules or subpackages) whose functions may import scaffoldfem
#: modules (lazy command dispatch).
LAZY_OK = ("cli", "api")
#: Stages importable without DOLFINx (``scaffoldfem check`` validates a study with them).
NO_DOLFINX = STAGES[:2]
DOLFINX_MODULES = ("dolfinx", "petsc4py", "ufl", "basix", "ffcx")
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250


@dataclass(frozen=True)
class Import:
    """One import of a scaffoldfem module found in the source."""

    source: str  # importing module
    target: str  # imported module (``from a.b import c``: a.b.c if that is a module)
    line: int
    in_function: bool

    def where(self) -> str:
        return f"{module_path(self.source)}:{self.line}"


def module_name(path: Path) -> str:
    """Dotted name of the module in ``path`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def module_path(name: str) -> str:
    p = modules().get(name)
    return str(p.relative_to(ROOT.parent)) if p is not None else name


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Absolute module named by a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]  # a module's relative imports start from its package
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _dynamic_target(node: ast.Call) -> str | None:
    """``importlib.import_module("scaffoldfem.x")`` / ``__import__("scaffoldfem.x")``."""
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
    if name in ("import_module", "__import__") and node.args \
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imports_in(source: str, importer: str, is_package: bool = False,
               known: set[str] | frozenset[str] = frozenset()) -> list[Import]:
    """The scaffoldfem modules imported by ``source`` (the text of module ``importer``).

    ``from a.b import c`` names module ``a.b.c`` when that is in ``known`` (a submodule),
    else module ``a.b``. An import inside a function body (at any depth, lambdas and
    methods included) has ``in_function``; imports in class bodies and in module-level
    ``if``/``try`` blocks run at import time and count as module level.
    """
    out: list[Import] = []

    def add(target: str, node: ast.AST, in_function: bool) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            out.append(Import(importer, target, node.lineno, in_function))

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, in_function)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, node, in_function)
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)):
            add(target, node, in_function)
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                          | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), False)
    return list(dict.fromkeys(out))  # ``from m import a, b``: once


@cache
def all_imports() -> tuple[Import, ...]:
    known = set(modules())
    out: list[Import] = []
    for name, path in modules().items():
        out += imports_in(path.read_text(), name, path.name == "__init__.py", known)
    return tuple(out)


def graph() -> dict[str, dict[str, Import]]:
    """Module-level import edges: importer -> imported -> first such import."""
    edges: dict[str, dict[str, Import]] = {name: {} for name in modules()}
    for imp in all_imports():
        if not imp.in_function and imp.target != imp.source:
            edges[imp.source].setdefault(imp.target, imp)
    return edges


def lazy_ok(name: str) -> bool:
    """May functions of module ``name`` import scaffoldfem modules (an entry point)?"""
    parts = name.split(".")
    return len(parts) > 1 and parts[1] in LAZY_OK


def stage_of(name: str) -> int | None:
    """Index in :data:`STAGES` of a module (None for ``__init__``/``__main__``/unknown)."""
    parts = name.split(".")
    if len(parts) < 2 or name == MAIN:
        return None
    return next((i for i, stage in enumerate(STAGES) if parts[1] in stage), None)


def find_cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle (as a closed path of modules) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the package is small enough to recurse
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    cycles = []
    for comp in components:
        members, start = set(comp), comp[0]
        # Shortest way back to the start inside the component (breadth first).
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w in members and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        cycles.append([start, *reversed(path[1:]), start])
    return cycles


def _fail(title: str, lines: list[str]) -> None:
    if lines:
        pytest.fail(f"{title} ({len(lines)}):\n  " + "\n  ".join(lines), pytrace=False)


# -- the checks ------------------------------------------------------------------------


def test_no_import_cycles():
    edges = graph()
    lines = []
    for cycle in find_cycles(edges):
        lines.append(" -> ".join(cycle))
        lines += [f"    {edges[a][b].where()}: imports {b}" for a, b in pairwise(cycle)]
    _fail("import cycles (module-level imports)", lines)


def test_every_module_has_a_stage():
    lines = [f"{module_path(m)}: not in STAGES; put it in a stage (tests/test_structure.py)"
             for m in modules() if m not in (INIT, MAIN) and stage_of(m) is None]
    _fail("modules outside the stages", lines)


def upward_imports(imports: tuple[Import, ...] | list[Import]) -> list[str]:
    """A line per module-level import against the flow of :data:`STAGES`."""
    lines = []
    for imp in imports:
        if imp.in_function:
            continue
        if imp.source == INIT:
            if imp.target != INIT:
                lines.append(f"{imp.where()}: {INIT}/__init__.py imports {imp.target} (it is "
                             "imported before every module and must import none)")
            continue
        src, dst = stage_of(imp.source), stage_of(imp.target)
        if src is not None and dst is not None and dst > src:
            lines.append(f"{imp.where()}: {imp.source} (stage {'/'.join(STAGES[src])}) imports "
                         f"{imp.target} from the later stage {'/'.join(STAGES[dst])}")
    return sorted(lines)


def test_imports_flow_down_the_stages():
    _fail("upward imports", upward_imports(all_imports()))


def test_top_stages_need_no_dolfinx():
    lines = []
    for name, path in modules().items():
        stage = stage_of(name)
        if stage is None or STAGES[stage] not in NO_DOLFINX:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level: what importing the module needs
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            lines += [f"{module_path(name)}:{node.lineno}: imports {n} at module level"
                      for n in names if n.split(".")[0] in DOLFINX_MODULES]
    _fail("DOLFINx/PETSc imports in the stages that must not need them", lines)


def test_the_command_line_starts_without_dolfinx():
    """Transitively: importing the command line (all that ``--help`` needs, and what
    ``check``/``init`` import at module level) loads neither DOLFINx nor PETSc (1.4 s
    instead of 2.6 s per command; provenance once pulled DOLFINx in through the
    solver statistics)."""
    heavy = sorted(DOLFINX_MODULES)
    code = ("import sys, scaffoldfem.cli; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_module_and_class_sizes():
    lines = []
    for name, path in modules().items():
        source = path.read_text()
        n = len(source.splitlines())
        rel = module_path(name)
        if n > MAX_MODULE_LINES:
            lines.append(f"{rel}: module of {n} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = node.end_lineno - start + 1
                if size > MAX_CLASS_LINES:
                    lines.append(f"{rel}:{start}: class {node.name} of {size} lines "
                                 f"(max {MAX_CLASS_LINES})")
    _fail("oversized modules and classes", lines)


def test_no_package_imports_inside_functions():
    lines = [f"{imp.where()}: imports {imp.target} inside a function"
             for imp in all_imports() if imp.in_function and not lazy_ok(imp.source)]
    _fail("scaffoldfem imports inside functions (import at module level instead)", lines)


# -- the checker itself -----------------------------------------------------------------


def test_checker_reads_imports():
    src = (
        "import scaffoldfem  # noqa\n"
        "import numpy\n"
        "from scaffoldfem.fem.locate import Locator\n"
        "from scaffoldfem.viz import pictures as P, REGION_X\n"
        "from . import sibling\n"
        "from ..config.geometry import GeometryConfig\n"
        "try:\n    from .opt import y\nexcept ImportError:\n    pass\n"
        "class A:\n    from scaffoldfem.units import Q\n"
        "def f():\n    from scaffoldfem.regions import CELL_TAGS\n"
        "    g = lambda: __import__('scaffoldfem.mpi')\n"
        "async def h():\n    import importlib\n    importlib.import_module('scaffoldfem.files')\n"
    )
    known = {"scaffoldfem.viz.pictures", "scaffoldfem.geometry.sibling"}
    got = {(i.target, i.in_function) for i in
           imports_in(src, "scaffoldfem.geometry.meshing", known=known)}
    assert got == {
        ("scaffoldfem", False), ("scaffoldfem.fem.locate", False),
        ("scaffoldfem.viz.pictures", False), ("scaffoldfem.viz", False),
        ("scaffoldfem.geometry.sibling", False), ("scaffoldfem.config.geometry", False),
        ("scaffoldfem.geometry.opt", False), ("scaffoldfem.units", False),
        ("scaffoldfem.regions", True), ("scaffoldfem.mpi", True), ("scaffoldfem.files", True),
    }
    # In a package's __init__, "." is the package itself.
    pkg = imports_in("from .meshing import load_mesh\n", "scaffoldfem.geometry", True)
    assert [i.target for i in pkg] == ["scaffoldfem.geometry.meshing"]


def test_checker_finds_cycles_and_stages():
    def imp(a, b):
        return Import(a, b, 1, False)

    edges = {"a": {"b": imp("a", "b")}, "b": {"c": imp("b", "c")}, "c": {"a": imp("c", "a")},
             "d": {"a": imp("d", "a")}}
    assert find_cycles(edges) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": imp("a", "b")}, "b": {}}) == []
    assert stage_of("scaffoldfem.errors") == 0
    assert stage_of("scaffoldfem.fem.locate") < stage_of("scaffoldfem.geometry.meshing")
    assert stage_of("scaffoldfem.cli") == len(STAGES) - 1
    assert stage_of(INIT) is None and stage_of(MAIN) is None
    up = upward_imports([Import("scaffoldfem.fem.solver", "scaffoldfem.model.coupled", 3, False),
                         Import("scaffoldfem.fem.solver", "scaffoldfem.run.loop", 4, True),
                         Import("scaffoldfem.viz.plots", "scaffoldfem.fem.locate", 5, False),
                         Import(INIT, "scaffoldfem.errors", 6, False)])
    assert len(up) == 2 and any("later stage model" in u for u in up)
    assert any(u.startswith("scaffoldfem/__init__.py:6") for u in up)
    # The real graph holds the edges we know of.
    assert "scaffoldfem.config.geometry" in graph()["scaffoldfem.config.study"]

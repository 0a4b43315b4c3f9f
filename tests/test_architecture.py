"""The core's structure, checked statically: module sizes, no import cycle, no import from a lower layer to
a higher one, and built-in plugins that see only the facade ``p2pcore.api``.

Every module is parsed with :mod:`ast`, nothing is imported. An import counts wherever it is written: at
the top, inside a function or an ``if TYPE_CHECKING:`` block (a type-only import still ties the layers
together), or as ``importlib.import_module`` with a literal name. Relative imports are resolved;
``from p2pcore.x import y`` where ``p2pcore.x.y`` is a module imports ``p2pcore.x.y``, otherwise it
imports ``p2pcore.x``. The parent packages Python runs on the way (``p2pcore/__init__.py`` for any
``p2pcore.x``) are not counted: a module depends on what it names.
"""

from __future__ import annotations

import ast
import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The layers of the core, lowest first. ARCHITECTURE.md describes the same layers: change both together.
# A module may import modules of its own layer and of the layers below it, never of a higher one. A module
# belongs to the layer of its longest matching entry:
#   "p2pcore.recipe"  the module p2pcore.recipe and every module below it (p2pcore.recipe.files, ...)
#   "p2pcore.api."    only the modules below p2pcore.api, not p2pcore.api itself
#   "=p2pcore.api"    exactly the module p2pcore.api
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("p2pcore.errors", "p2pcore.formats", "p2pcore.version", "p2pcore.atomicfile")),
    ("api", ("p2pcore.api.", "p2pcore.imageio", "p2pcore.jitter", "p2pcore.weights", "p2pcore.alignment")),
    ("host", ("p2pcore.typenames", "p2pcore.kinds", "p2pcore.registry", "p2pcore.compat", "p2pcore.hookspecs",
              "p2pcore.plugins")),
    ("recipe", ("p2pcore.recipe", "p2pcore.schema", "p2pcore.records", "p2pcore.rundir")),
    ("checkpoint", ("p2pcore.checkpoint",)),
    ("engine", ("p2pcore.engine",)),
    ("services", ("p2pcore.services", "p2pcore.inference")),
    ("tools", ("p2pcore.report", "p2pcore.study", "p2pcore.docgen", "p2pcore.scaffold", "p2pcore.testing",
               "p2pcore.inspect", "p2pcore.progress", "p2pcore.console")),
    ("commands", ("p2pcore.commands", "p2pcore.cli", "p2pcore.__main__")),
    ("facades", ("=p2pcore", "=p2pcore.api")),
]

# The public faces: a plugin imports p2pcore.api; no core module imports either (it imports p2pcore.api.<module>).
FACADES = ("p2pcore", "p2pcore.api")
PLUGIN_FACADE = "p2pcore.api"
MAX_LINES = 450

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "p2pcore"
# Plugin packages that may use nothing of the core but its facade (their own tests may use p2pcore.testing).
PLUGIN_PACKAGES = sorted(p for p in ROOT.glob("plugins/p2p_*") if p.is_dir()) + [
    ROOT / "examples" / "p2p-example" / "p2p_example"]


# -- the checker ------------------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Edge:
    """`source` imports `target` at `line` of `file` (a path relative to the repository, for messages)."""

    source: str
    target: str
    line: int
    file: str

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Graph:
    """The modules of one package (name -> file), their lengths, the imports among them and the files that
    did not parse."""

    modules: dict[str, Path]
    lines: dict[str, int]
    edges: list[Edge]
    unparsed: list[str]


def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package at `package_dir`, by dotted name (a package by its ``__init__``)."""
    names: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if all(part.isidentifier() for part in parts):  # skips __pycache__ leftovers, templates named a-b.py
            names[".".join(parts)] = path
    return names


def _relative_base(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    """The absolute module a ``from ... import`` names, or None for a relative import that climbs too far."""
    if level == 0:
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        return None
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _literal_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("a.b")`` / ``import_module("a.b")`` with a literal name."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if called != "import_module" or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
        return first.value
    return None


def raw_imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module name, line) for every import in `tree`, at any depth, before matching to files."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _relative_base(module, is_package, node.level, node.module)
            if base is None:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if alias.name != "*" and sub in known else base), node.lineno
        elif isinstance(node, ast.Call) and (name := _literal_import(node)):
            yield name, node.lineno


def _existing(name: str, known: set[str]) -> str | None:
    """`name`, or its nearest enclosing module that exists (an import of a missing module counts for it)."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in known else None


def build_graph(package_dir: Path, root: Path) -> Graph:
    """Parse every module of the package at `package_dir` and collect the imports among its modules."""
    modules = module_names(package_dir)
    known = set(modules)
    package = package_dir.name
    lines: dict[str, int] = {}
    edges: set[Edge] = set()
    unparsed: list[str] = []
    for module, path in modules.items():
        file = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        lines[module] = len(text.splitlines())
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError as exc:
            unparsed.append(f"{file}:{exc.lineno}: {exc.msg}")
            continue
        for name, line in raw_imports(tree, module, path.name == "__init__.py", known):
            if name != package and not name.startswith(package + "."):
                continue
            target = _existing(name, known)
            if target is not None and target != module:
                edges.add(Edge(module, target, line, file))
    return Graph(modules, lines, sorted(edges), unparsed)


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> tuple[int, str] | None:
    """(index, name) of the layer whose entry matches `module` longest (see LAYERS), or None."""
    best: tuple[int, int, str] | None = None  # (match length, index, name)
    for index, (name, entries) in enumerate(layers):
        for entry in entries:
            if entry.startswith("="):
                length = len(entry) + 1000 if module == entry[1:] else -1  # an exact entry beats any prefix
            elif entry.endswith("."):
                length = len(entry) if module.startswith(entry) else -1
            else:
                length = len(entry) if module == entry or module.startswith(entry + ".") else -1
            if length >= 0 and (best is None or length > best[0]):
                best = (length, index, name)
    return None if best is None else (best[1], best[2])


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (each sorted), by Tarjan's algorithm."""
    successors: dict[str, list[str]] = {m: [] for m in graph.modules}
    for edge in graph.edges:
        successors[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative, so a deep chain of imports cannot overflow the stack
        work = [(start, iter(successors[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def shortest_cycle(graph: Graph, component: list[str]) -> list[Edge]:
    """One shortest cycle through the first module of a component, as the edges that close it."""
    members = set(component)
    start = component[0]
    first: dict[str, Edge] = {}
    for edge in graph.edges:  # one edge (the first line) per pair of modules
        if edge.source in members and edge.target in members:
            first.setdefault(f"{edge.source} {edge.target}", edge)
    out: dict[str, list[Edge]] = {}
    for edge in first.values():
        out.setdefault(edge.source, []).append(edge)
    came: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for edge in out.get(node, []):
            if edge.target == start:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, came[path[0].source])
                return path
            if edge.target not in came:
                came[edge.target] = edge
                queue.append(edge.target)
    return []  # pragma: no cover - a component always has a cycle through each member


def describe_cycle(graph: Graph, component: list[str]) -> str:
    path = shortest_cycle(graph, component)
    steps = " -> ".join(f"{e.source} ({e.where()})" for e in path) + f" -> {component[0]}"
    return (f"cycle of {len(component)} modules: {', '.join(component)}\n"
            f"    each at the line importing the next: {steps}")


def upward_imports(graph: Graph, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> list[str]:
    """Every import of a module of a higher layer (modules without a layer are reported elsewhere)."""
    problems = []
    for edge in graph.edges:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is None or target is None or target[0] <= source[0]:
            continue
        said = (f"{edge.where()}: {edge.source} (layer {source[1]!r}) imports {edge.target} "
                f"(layer {target[1]!r}), a higher layer")
        if edge.target in FACADES:
            said += f"; import the module that defines the name ({edge.target}.<module>), not the facade"
        problems.append(said)
    return problems


def plugin_imports(package_dir: Path, root: Path, core_modules: set[str]) -> list[str]:
    """Every import in the plugin package at `package_dir` of a core module other than the facade."""
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        file = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=file)
        except SyntaxError as exc:
            problems.append(f"{file}:{exc.lineno}: does not parse ({exc.msg})")
            continue
        reached: list[tuple[str, int]] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                reached += [(alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    reached.append((sub if sub in core_modules else node.module, node.lineno))
            elif isinstance(node, ast.Call) and (name := _literal_import(node)):
                reached.append((name, node.lineno))
        for name, line in reached:
            if (name == "p2pcore" or name.startswith("p2pcore.")) and name != PLUGIN_FACADE:
                problems.append(f"{file}:{line}: imports {name}; a plugin imports only the facade {PLUGIN_FACADE}")
    return problems


@functools.cache
def core_graph() -> Graph:
    return build_graph(CORE, ROOT)


def _fail(title: str, lines: list[str]) -> None:
    pytest.fail(title + "\n  " + "\n  ".join(lines), pytrace=False)


# -- the core ---------------------------------------------------------------------------------------------

def test_every_core_module_parses():
    unparsed = core_graph().unparsed
    if unparsed:
        _fail("modules that do not parse (the other checks skip them):", unparsed)


def test_no_core_module_is_longer_than_the_limit():
    graph = core_graph()
    long = sorted(((n, m) for m, n in graph.lines.items() if n > MAX_LINES), reverse=True)
    if long:
        _fail(f"{len(long)} modules longer than {MAX_LINES} lines (split them by job):",
              [f"{graph.modules[m].relative_to(ROOT).as_posix()}: {n} lines" for n, m in long])


def test_the_core_import_graph_has_no_cycle():
    graph = core_graph()
    found = cycles(graph)
    if found:
        _fail(f"{len(found)} import cycles among core modules:", [describe_cycle(graph, c) for c in found])


def test_every_core_module_has_a_layer():
    missing = sorted(m for m in core_graph().modules if layer_of(m) is None)
    if missing:
        _fail(f"{len(missing)} modules without a layer:",
              [f"module {m} has no layer: add it to ARCHITECTURE.md and this table (LAYERS in {Path(__file__).name})"
               for m in missing])


def test_no_core_module_imports_a_higher_layer():
    problems = upward_imports(core_graph())
    if problems:
        _fail(f"{len(problems)} imports of a higher layer:", problems)


# -- plugins ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_plugin_imports_only_the_facade(package):
    if not package.is_dir():
        pytest.skip(f"{package.relative_to(ROOT)} is not in this tree")
    problems = plugin_imports(package, ROOT, set(core_graph().modules))
    if problems:
        _fail(f"{len(problems)} imports of the core past its facade:", problems)


# -- the checker itself, on a small package -------------------------------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "pkg"


def test_the_checker_resolves_imports_at_any_depth(tmp_path):
    package = _package(tmp_path, {
        "pkg/__init__.py": "from pkg import a\nfrom pkg.a import f\n",
        "pkg/a.py": "def f():\n    from . import b\n    return b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.c import X\nimport pkg.sub\n",
        "pkg/sub/__init__.py": "from ..a import f\nimport os\n",
        "pkg/sub/c.py": "import importlib\nX = 1\nfrom pkg.sub import c\nfrom pkg import missing\n"
                        "importlib.import_module('pkg.b')\nfrom ... import too_far\n",
        "pkg/sub/d.py": "import pkg.sub.gone\nfrom .c import *\n",
        "pkg/sub/e.py": "X = (\n" + "1,\n" * 10 + ")\n",
        "pkg/broken.py": "def (:\n",
    })
    graph = build_graph(package, tmp_path)
    got = {(e.source, e.target, e.line) for e in graph.edges}
    assert got == {
        ("pkg", "pkg.a", 1), ("pkg", "pkg.a", 2),
        ("pkg.a", "pkg.b", 2),  # inside a function, relative
        ("pkg.b", "pkg.sub.c", 3), ("pkg.b", "pkg.sub", 4),  # under TYPE_CHECKING; a plain import
        ("pkg.sub", "pkg.a", 1),  # two levels up from a package's __init__
        ("pkg.sub.c", "pkg", 4), ("pkg.sub.c", "pkg.b", 5),  # a name that is no module; a literal import_module
        ("pkg.sub.d", "pkg.sub", 1), ("pkg.sub.d", "pkg.sub.c", 2),  # a missing module counts for its package
    }  # no edge for the implicit parents, none to itself, none for os or typing
    assert graph.lines["pkg.sub.e"] == 12
    assert graph.unparsed == ["pkg/broken.py:1: invalid syntax"]
    component = ["pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"]
    assert cycles(graph) == [component]
    assert describe_cycle(graph, component) == (
        "cycle of 5 modules: pkg, pkg.a, pkg.b, pkg.sub, pkg.sub.c\n    each at the line importing the next: "
        "pkg (pkg/__init__.py:1) -> "
        "pkg.a (pkg/a.py:2) -> pkg.b (pkg/b.py:3) -> pkg.sub.c (pkg/sub/c.py:4) -> pkg")


def test_the_checker_places_modules_by_their_longest_entry():
    layers = [("low", ("p2pcore.x", "p2pcore.api.")), ("mid", ("p2pcore.x.deep",)), ("top", ("=p2pcore.api",))]
    assert layer_of("p2pcore.x", layers) == (0, "low")
    assert layer_of("p2pcore.x.deep.more", layers) == (1, "mid")
    assert layer_of("p2pcore.xy", layers) is None  # a prefix matches whole names only
    assert layer_of("p2pcore.api", layers) == (2, "top")
    assert layer_of("p2pcore.api.base", layers) == (0, "low")
    graph = Graph({}, {}, [Edge("p2pcore.x", "p2pcore.x.deep", 3, "p2pcore/x/__init__.py"),
                           Edge("p2pcore.x.deep", "p2pcore.x", 1, "p2pcore/x/deep.py"),
                           Edge("p2pcore.api.base", "p2pcore.api", 7, "p2pcore/api/base.py")], [])
    assert upward_imports(graph, layers) == [
        "p2pcore/x/__init__.py:3: p2pcore.x (layer 'low') imports p2pcore.x.deep (layer 'mid'), a higher layer",
        "p2pcore/api/base.py:7: p2pcore.api.base (layer 'low') imports p2pcore.api (layer 'top'), a higher layer; "
        "import the module that defines the name (p2pcore.api.<module>), not the facade"]


def test_the_plugin_check_allows_the_facade_only(tmp_path):
    package = _package(tmp_path, {"pkg/__init__.py": (
        "from p2pcore.api import Params\nfrom p2pcore import api\nimport p2pcore.api\nfrom . import own\n"
        "from p2pcore.api import base\nfrom p2pcore import P2PError\nimport p2pcore.engine\n"
        "def f():\n    from p2pcore.imageio import load_image\n")})
    assert plugin_imports(package, tmp_path, {"p2pcore", "p2pcore.api", "p2pcore.api.base"}) == [
        f"pkg/__init__.py:{line}: imports {name}; a plugin imports only the facade p2pcore.api"
        for line, name in [(5, "p2pcore.api.base"), (6, "p2pcore"), (7, "p2pcore.engine"), (9, "p2pcore.imageio")]]

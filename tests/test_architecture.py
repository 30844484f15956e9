"""The package's structure, read from the source: layering, import cycles, torch-freedom and sizes.

Every ``import`` / ``from … import`` in ``circuitspec/`` counts, function-level and ``TYPE_CHECKING``
ones included (a lazy import is still a dependency), as does ``importlib.import_module("literal")``.
Data flows one way (docs/ARCHITECTURE.md):

    spec → graph → engine → pipeline → checkpoints / cli, with measurement → stats → reports → regress
    between the engine and the pipeline; stats and reports never import the engine.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "circuitspec"

# Each unit (a subpackage or a top-level module of circuitspec) and the units it may import.
# The table itself must be acyclic (test_layering_table_is_acyclic), so obeying it rules out cycles
# between units; cycles between modules inside one unit are checked separately.
TORCH_FREE = {
    "errors", "tokenizer", "measurement", "spec", "claims", "graph", "stats", "reports", "regress",
    "directions", "text_metrics", "lazy_exports",
}  # fmt: skip
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "errors": set(),
    "lazy_exports": set(),  # a package __getattr__ importing on first use (stats, reports)
    "tokenizer": set(),  # TextTokenizer: below the zoo and the engine, torch-free
    "measurement": {"errors"},  # the engine → stats contract
    "spec": {"errors"},
    # the registry names engine functions by string only; directions: a steering file's width
    "claims": {"spec", "measurement", "directions", "learned", "errors"},  # learned: a learned_scaling file
    "zoo": {"spec", "tokenizer", "errors"},  # shapes torch-free at import; weights built lazily
    "graph": {"spec", "claims", "zoo", "errors"},
    "stats": {"spec", "measurement", "lazy_exports", "errors"},
    "reports": {"spec", "claims", "graph", "measurement", "stats", "lazy_exports", "errors"},
    "regress": {"spec", "stats", "reports", "errors"},  # pure comparison of reports
    "directions": {"errors"},  # directions, subspaces, maps and their files (numpy / scipy)
    "text_metrics": {"errors"},  # scores of generated text (VADER, rapidfuzz)
    "learned": {"directions", "errors"},  # learned interventions, their objective, training and files
    "engine": {
        "spec", "claims", "graph", "zoo", "tokenizer", "measurement", "directions", "text_metrics", "learned",
        "errors",
    },
    "features": {"spec", "engine", "zoo", "tokenizer", "errors"},  # dictionaries: splicing, search
    "pipeline": {
        "spec", "claims", "graph", "engine", "features", "measurement", "stats", "reports", "regress",
        "errors",
    },
    "checkpoints": {"pipeline", "spec", "graph", "zoo", "reports", "regress", "errors"},  # regress / baseline
    # several models: one view per model through the pipeline, cross-model claims, the side-by-side matrix
    "compare": {
        "pipeline", "spec", "claims", "graph", "engine", "directions", "measurement", "stats", "reports",
        "regress", "errors",
    },
    # discovery: edge attribution patching on a hypothesis' prompts → a hypothesis YAML to verify
    "discover": {"pipeline", "spec", "graph", "engine", "errors"},
    # the Ray fan-out of regress / verify: jobs above the pipeline, Ray imported lazily
    "distributed": {
        "pipeline", "checkpoints", "spec", "graph", "measurement", "stats", "reports", "regress", "errors",
    },
    "pytest_plugin": {"pipeline", "spec", "stats", "errors"},
    "cli": {
        "spec", "claims", "graph", "zoo", "engine", "features", "measurement", "stats", "reports",
        "regress", "pipeline", "checkpoints", "compare", "tokenizer", "directions", "learned", "discover",
        "distributed", "errors",
    },
}  # fmt: skip

MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_CLASS_LINES = 400, 60, 250
HEAVY = ("torch", "transformer_lens", "sae_lens", "transformers")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module (or package), dotted
    line: int

    def where(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _existing(name: str) -> str | None:
    """``name`` or its longest prefix that is one of our modules (``a.b.func`` → ``a.b``)."""
    modules = _modules()
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else None


def _imported(module: str, node: ast.AST, is_package: bool) -> list[str]:
    """Dotted names one import statement (or literal ``import_module`` call) brings in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        # ``from pkg import sub`` depends on the submodule when there is one, else on ``pkg`` itself
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in _modules() else base for a in node.names]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


@cache
def _edges() -> tuple[Edge, ...]:
    """Every import of one of our modules by another, at any depth of the importing file."""
    edges = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(module, node, path.name == "__init__.py"):
                target = _existing(name) if name.split(".")[0] == "circuitspec" else None
                if target and target != module:
                    edges.append(Edge(module, target, getattr(node, "lineno", 0)))
    return tuple(edges)


def _heavy_imports() -> list[Edge]:
    """Imports of torch / TransformerLens / sae-lens / transformers, at any depth."""
    found = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            for name in _imported(module, node, path.name == "__init__.py"):
                if name.split(".")[0] in HEAVY:
                    found.append(Edge(module, name, node.lineno))
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_the_walk_sees_function_level_imports() -> None:
    """Guards the test itself: lazy imports inside functions must be edges."""
    edges = {(e.source, e.target) for e in _edges()}
    assert ("circuitspec.pipeline", "circuitspec.engine.planner") in edges  # inside run_verification
    assert ("circuitspec.engine.models", "circuitspec.zoo.catalog") in edges  # inside _load_bundled


def test_every_unit_is_in_the_layering_table() -> None:
    units = {_unit(m) for m in _modules()}
    missing = sorted(units - set(ALLOWED))
    assert not missing, f"add {missing} to ALLOWED in tests/test_architecture.py (what may each import?)"


def test_layering_table_is_acyclic() -> None:
    graph = nx.DiGraph([(a, b) for a, targets in ALLOWED.items() for b in targets])
    assert nx.is_directed_acyclic_graph(graph), list(nx.simple_cycles(graph))


def test_imports_follow_the_layering() -> None:
    wrong = [
        f"{e.where()} ({_unit(e.source)} may not import {_unit(e.target)})"
        for e in _edges()
        if _unit(e.source) != _unit(e.target) and _unit(e.target) not in ALLOWED.get(_unit(e.source), set())
    ]
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(_modules())
    lines = {}
    for e in _edges():
        graph.add_edge(e.source, e.target)
        lines.setdefault((e.source, e.target), e.line)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    detail = []
    for component in cycles:
        sub = graph.subgraph(component)
        detail.append(" ; ".join(f"{a}:{lines[a, b]} -> {b}" for a, b in sorted(sub.edges)))
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_torch_free_units_never_import_torch() -> None:
    wrong = [e.where() for e in _heavy_imports() if _unit(e.source) in TORCH_FREE]
    assert not wrong, "torch-free units importing a model library:\n" + "\n".join(wrong)


def test_torch_is_not_imported_at_import_time() -> None:
    """validate / graph / schema, the pytest plugin and `regress` start without loading torch."""
    modules = [
        "circuitspec.cli.main",
        "circuitspec.pipeline",
        "circuitspec.checkpoints",
        "circuitspec.pytest_plugin",
        "circuitspec.zoo.catalog",
        "circuitspec.graph.compile",
        "circuitspec.features.splice",
        *sorted(m for m in _modules() if _unit(m) in TORCH_FREE),
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def _too_long(relative: str, source: str) -> list[str]:
    """What in one file breaks the size limits."""
    problems = []
    if (n := len(source.splitlines())) > MAX_FILE_LINES:
        problems.append(f"{relative}: {n} lines (max {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = MAX_FUNCTION_LINES
        elif isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        else:
            continue
        if (n := (node.end_lineno or node.lineno) - node.lineno + 1) > limit:
            problems.append(f"{relative}:{node.lineno}: {node.name} is {n} lines (max {limit})")
    return problems


def test_files_functions_and_classes_stay_small() -> None:
    problems = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in _too_long(path.relative_to(PACKAGE).as_posix(), path.read_text())
    ]
    assert not problems, "too long:\n" + "\n".join(problems)

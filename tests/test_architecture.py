"""The package's shape: imports go down the layers of docs/architecture.md, never in a
cycle, and no module or function outgrows what a reader can hold in mind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "riskfed"

# Lowest first; a module may import from its own layer or lower ones. The most specific
# prefix decides a module's layer (docs/architecture.md says why each sits where it does).
LAYERS: list[tuple[str, ...]] = [
    ("riskfed",),  # the root package: the version and the lazy table of public names
    ("riskfed.errors", "riskfed.settings", "riskfed._settings"),
    ("riskfed.data",),
    ("riskfed.crypto", "riskfed.binning", "riskfed.evaluation"),  # pure maths over arrays
    ("riskfed.alignment",),
    ("riskfed.learning",),
    ("riskfed.protocol",),
    ("riskfed.roles", "riskfed.checkpoint"),
    ("riskfed.transport", "riskfed.certs"),
    ("riskfed.session",),
    # What a saved model holds: its parts, the bank-only fallback, the points scale.
    ("riskfed.models.artifact", "riskfed.models.parts", "riskfed.models.baselines", "riskfed.scoring.scorecard"),
    ("riskfed.scoring", "riskfed.validation"),
    ("riskfed.models",),  # the estimator, on top of sessions, the artifact and scoring
    ("riskfed.job",),
    ("riskfed.deploy", "riskfed.cli", "riskfed.ui", "app"),
]

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60  # not counting the docstring
# Today's exceptions, each with its reason. (None.)
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    return {_module_name(p): p for p in [*files, ROOT / "app.py"]}


SOURCES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Every riskfed module ``name`` imports, wherever in the module (lazy imports too);
    names under ``if TYPE_CHECKING:`` are for type checkers only and do not count."""
    found: set[str] = set()
    package = name if SOURCES[name].name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in ("riskfed", "app"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "riskfed":
                for alias in node.names:
                    # "from riskfed.crypto import paillier" imports the module riskfed.crypto.paillier.
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in SOURCES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, ast.parse(path.read_text())) for name, path in SOURCES.items()}


def layer_of(module: str) -> int:
    best, depth = None, -1
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = level, prefix.count(".")
    if best is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py (and docs/architecture.md)")
    return best


def test_every_module_has_a_layer():
    for name in SOURCES:
        layer_of(name)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_imports_go_down_the_layers():
    upward = upward_imports(GRAPH)
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    cycles = import_cycles(GRAPH)
    assert not cycles, f"import cycles: {cycles}"


def test_modules_stay_short():
    long = {
        name: n
        for name, path in SOURCES.items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES and name not in LONG_MODULES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _function_lengths(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            doc = body[0] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else None
            doc_lines = doc.end_lineno - doc.lineno + 1 if doc is not None and isinstance(doc.value.value, str) else 0
            yield node.name, node.end_lineno - node.lineno + 1 - doc_lines


@pytest.mark.parametrize("where", ["riskfed", "benchmarks", "app.py"])
def test_functions_stay_short(where):
    paths = [ROOT / where] if where.endswith(".py") else sorted((ROOT / where).rglob("*.py"))
    long = [
        f"{path.relative_to(ROOT)}:{name} ({n} lines)"
        for path in paths
        for name, n in _function_lengths(path)
        if n > MAX_FUNCTION_LINES and f"{path.relative_to(ROOT)}:{name}" not in LONG_FUNCTIONS
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring not counted): {long}"


def test_the_checks_catch_what_they_look_for():
    """An upward import and a cycle, planted in a copy of the graph, are found; lazy
    imports count, type-checking-only ones do not."""
    planted = {k: set(v) for k, v in GRAPH.items()}
    planted["riskfed.models.artifact"].add("riskfed.models.estimator")  # the old hidden cycle
    assert upward_imports(planted) == [
        "riskfed.models.artifact (layer 10) imports riskfed.models.estimator (layer 12)"
    ]
    assert any({"riskfed.models.artifact", "riskfed.models.estimator"} <= set(c) for c in import_cycles(planted))
    assert layer_of("riskfed.models.estimator") > layer_of("riskfed.scoring.score") > layer_of("riskfed.models.artifact")
    assert layer_of("riskfed.crypto.paillier") < layer_of("riskfed.roles.bank")
    tree = ast.parse("from riskfed.roles.bank import Bank\nif TYPE_CHECKING:\n    from riskfed.job import run_pipeline\n")
    assert _imports("riskfed.crypto.paillier", tree) == {"riskfed.roles.bank"}
    tree = ast.parse("from riskfed.crypto import paillier\ndef f():\n    from riskfed import settings\n")
    assert _imports("riskfed.roles.base", tree) == {"riskfed.crypto.paillier", "riskfed.settings"}

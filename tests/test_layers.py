"""The package's import graph: no cycles, and a bottom layer that imports nothing above it.

Every import counts, at module level or inside a function (a function-level
import hides a cycle, it does not remove it), as does
``importlib.import_module("brainxr....")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import brainxr

PACKAGE = Path(brainxr.__file__).parent

#: the bottom layer: dims, errors, geometry, input coercion and the repr helpers (views, their HTML blocks)
BOTTOM = {
    "brainxr.dims", "brainxr.errors", "brainxr.geometry", "brainxr.nifti", "brainxr.inputs", "brainxr._html", "brainxr._repr",
    "brainxr._views", "brainxr._docs", "brainxr._estimator", "brainxr._arrays",
}
#: what the bottom layer may import from brainxr besides itself
BOTTOM_MAY_IMPORT = BOTTOM | {"brainxr"}

#: imports that close a cycle, each owned by a change in flight (remove an entry once it is gone);
#: the test fails if any other cycle appears, or if one of these edges is no longer there
KNOWN_BACK_EDGES: set = set()


def _modules() -> dict:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict:
    """Module -> the brainxr modules it imports (anywhere in its code)."""
    modules = _modules()

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(resolve(alias.name) for alias in node.names if alias.name.startswith("brainxr"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("brainxr"):
                    for alias in node.names:
                        full = f"{base}.{alias.name}"
                        targets.add(full if full in modules else resolve(base))
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("brainxr")
            ):
                targets.add(resolve(node.args[0].value))
        targets.discard(module)
        targets.discard("")
        graph[module] = targets
    return graph


def cycles(graph: dict) -> list[frozenset]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    # brainxr.masking imports the template lazily inside compute_brain_mask
    assert "brainxr.datasets.mni152" in graph["brainxr.masking"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_cycle():
    graph = import_graph()
    gone = sorted(edge for edge in KNOWN_BACK_EDGES if edge[1] not in graph[edge[0]])
    assert not gone, f"these known back-edges are gone: remove them from KNOWN_BACK_EDGES: {gone}"
    for source, target in KNOWN_BACK_EDGES:
        graph[source].discard(target)
    found = [sorted(cycle) for cycle in cycles(graph)]
    assert not found, f"import cycles among brainxr modules: {found}"


def test_the_bottom_layer_imports_nothing_above_it():
    graph = import_graph()
    above = {module: sorted(graph[module] - BOTTOM_MAY_IMPORT) for module in BOTTOM}
    assert not any(above.values()), f"bottom-layer modules import from above: {above}"

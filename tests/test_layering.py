"""The package's layering, read from its source: no import cycle among ganbench's modules (imports
inside functions included), the backends import nothing from training/, and the step written once
(ganbench.step, ganbench.step_inputs) imports no backend."""

import ast
from pathlib import Path

import ganbench

ROOT = Path(ganbench.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imported(path: Path) -> set:
    """The ganbench modules a file imports anywhere in it (`from a.b import c` names a.b.c when
    that is a module, else a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                      for alias in node.names}
    return {name for name in names if name in MODULES}


GRAPH = {name: imported(path) - {name} for name, path in MODULES.items()}


def cycles() -> list:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    assert "ganbench.step" in GRAPH["ganbench.backends.torch.step"]
    assert "ganbench.data.datasets" in GRAPH["ganbench.data.catalog"]


def test_no_import_cycle():
    assert cycles() == []


def test_backends_import_nothing_from_training():
    offending = {name: sorted(GRAPH[name]) for name in GRAPH if name.startswith("ganbench.backends")
                 if any(dep.startswith("ganbench.training") for dep in GRAPH[name])}
    assert offending == {}


def test_the_shared_step_imports_no_backend():
    for name in ("ganbench.step", "ganbench.step_inputs"):
        assert not any(dep.startswith(("ganbench.backends", "ganbench.training")) for dep in GRAPH[name]), name

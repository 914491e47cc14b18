#!/usr/bin/env python3
"""The package's import graph, computed from the code: nodes, arrows, upward arrows and circles.

    python scripts/import_graph.py [--modules] [--json]

Every `import` and `from ... import` of `pretrain_studio` is read with `ast`, at module level and inside
functions alike (a function-level import that dodges a circle is still an arrow). A node is a top-level module
or sub-package (`training`, `ui`, `data` count as one each), or with `--modules` every module. An arrow runs
upward when it goes from a lower layer to a higher one in LAYERS below, the intended order of the package from
the bottom (settings, storage) to the top (the front doors). A circle is a strongly connected set of two or more
nodes. Prints the arrows, then a summary line and, with --json, one JSON line; tests/test_layering.py holds the
package to it.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pretrain_studio"

# Bottom to top. A node may import from its own layer and the layers below it.
LAYERS: list[tuple[str, set[str]]] = [
    ("settings", {"config", "settings_schema", "auto_defaults", "errors", "run_owner", "run_states"}),
    ("storage", {"registry", "workspace"}),
    ("data", {"data"}),
    ("models", {"pooling", "bottleneck", "model_store", "model_lookup", "preflight"}),
    ("engine", {"training"}),
    ("services", {"services", "search", "inference", "tagging", "export", "jobs"}),
    ("facade", {"studio"}),
    ("ui", {"ui"}),
    ("entry", {"cli", "__main__", "__init__"}),
]


@dataclass
class Graph:
    arrows: dict[str, set[str]] = field(default_factory=dict)
    function_level: set[tuple[str, str]] = field(default_factory=set)  # arrows made only inside functions

    @property
    def nodes(self) -> set[str]:
        return set(self.arrows) | {b for targets in self.arrows.values() for b in targets}

    def count(self) -> int:
        return sum(len(targets) for targets in self.arrows.values())


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(node: str, layers: list[tuple[str, set[str]]] | None = None) -> int:
    top = node.split(".")[0]
    for rank, (_, members) in enumerate(layers or LAYERS):
        if top in members:
            return rank
    raise KeyError(f"{node} is in no layer of scripts/import_graph.py: add it to LAYERS")


def _imports(path: Path, modules: set[str], package: Path) -> list[tuple[str, bool]]:
    """(imported module, only inside a function) for each import of the package in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = module_name(path, package).split(".")
    package_parts = own if path.name == "__init__.py" else own[:-1]
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    found = []
    for n in ast.walk(tree):
        names: list[str] = []
        if isinstance(n, ast.ImportFrom):
            if n.level:
                base = package_parts[:len(package_parts) - (n.level - 1)]
                target = ".".join(base + ([n.module] if n.module else []))
            elif (n.module or "").split(".")[0] == package.name:
                target = n.module.removeprefix(package.name).lstrip(".")
            else:
                continue
            for alias in n.names:  # `from . import studio` names a module, `from .config import X` a symbol
                joined = f"{target}.{alias.name}" if target else alias.name
                names.append(joined if joined in modules else target)
        elif isinstance(n, ast.Import):
            names = [a.name.removeprefix(package.name).lstrip(".") for a in n.names
                     if a.name.startswith(package.name + ".")]
        found.extend((name, id(n) in inside) for name in names if name in modules)
    return found


def build(fine: bool = False, package: Path = PACKAGE) -> Graph:
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    modules = set(paths)
    node = (lambda m: m) if fine else (lambda m: m.split(".")[0])
    graph = Graph()
    module_level: set[tuple[str, str]] = set()
    for name, path in paths.items():
        for target, in_function in _imports(path, modules, package):
            a, b = node(name), node(target)
            if a == b:
                continue
            graph.arrows.setdefault(a, set()).add(b)
            if in_function:
                graph.function_level.add((a, b))
            else:
                module_level.add((a, b))
    graph.function_level -= module_level
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected sets of two or more nodes (Tarjan), each sorted, the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.arrows.get(v, ())):
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    sys.setrecursionlimit(max(1000, 10 * len(graph.nodes)))
    for v in sorted(graph.nodes):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(graph: Graph, layers: list[tuple[str, set[str]]] | None = None) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.arrows.items() for b in targets
                  if layer_of(a, layers) < layer_of(b, layers))


def summary(graph: Graph, layers: list[tuple[str, set[str]]] | None = None) -> dict:
    return {"nodes": len(graph.nodes), "layers": len({layer_of(n, layers) for n in graph.nodes}),
            "arrows": graph.count(), "upward": [f"{a} -> {b}" for a, b in upward(graph, layers)],
            "circles": circles(graph),
            "function_level_only": [f"{a} -> {b}" for a, b in sorted(graph.function_level)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="one node per module instead of per top-level name")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the summary")
    args = parser.parse_args()
    graph = build(fine=args.modules)
    for a in sorted(graph.arrows, key=lambda n: (layer_of(n), n)):
        marks = [f"{b}{' (upward)' if layer_of(a) < layer_of(b) else ''}"
                 f"{' (in a function only)' if (a, b) in graph.function_level else ''}" for b in sorted(graph.arrows[a])]
        print(f"{a} [{LAYERS[layer_of(a)][0]}] -> {', '.join(marks)}")
    got = summary(graph)
    print(f"\n{got['nodes']} nodes on {got['layers']} layers, {got['arrows']} arrows, {len(got['upward'])} upward, "
          f"{len(got['circles'])} circles, {len(got['function_level_only'])} arrows made only inside functions")
    for circle in got["circles"]:
        print("circle:", " ".join(circle))
    if args.json:
        print(json.dumps(got))


if __name__ == "__main__":
    main()

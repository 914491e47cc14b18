"""The package's import graph (scripts/import_graph.py) is layered: no circle, no import up a layer.

Function-level imports count as arrows too, so a circle cannot be dodged by importing inside a function. The
check runs on the coarse graph (a sub-package is one node) and on the module graph (no circle inside
`services/`, `training/` or `ui/` either).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(spec)
sys.modules["import_graph"] = import_graph  # dataclasses look their module up by name
spec.loader.exec_module(import_graph)



@pytest.fixture(scope="module", params=[False, True], ids=["packages", "modules"])
def summary(request):
    return import_graph.summary(import_graph.build(fine=request.param))


def test_every_module_has_a_layer(summary):
    graph = import_graph.build(fine=True)
    for node in graph.nodes:
        import_graph.layer_of(node)  # raises, naming the module, when LAYERS lacks it


def test_no_import_runs_up_a_layer(summary):
    assert summary["upward"] == []


def test_no_import_circle(summary):
    assert summary["circles"] == []


def test_the_graph_finds_circles_and_upward_imports_in_code(tmp_path):
    """The tool itself on a small package: a module-level arrow, a function-level one that closes a circle,
    a relative import from a sub-package, and an upward one."""
    package = tmp_path / "toy"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "base.py").write_text("from ..high import thing\n")  # up a layer
    (package / "high.py").write_text("import toy.low.base\n\ndef f():\n    from .mid import g\n")
    (package / "mid.py").write_text("from toy import high\n")
    layers = [("low", {"low"}), ("mid", {"mid"}), ("high", {"high", "__init__"})]
    graph = import_graph.build(package=package)
    assert graph.arrows == {"low": {"high"}, "high": {"low", "mid"}, "mid": {"high"}}
    assert graph.function_level == {("high", "mid")}
    got = import_graph.summary(graph, layers)
    assert got["circles"] == [["high", "low", "mid"]]
    assert got["upward"] == ["low -> high", "mid -> high"]


def test_the_studio_keeps_every_method_the_api_calls():
    """The façade forwards to the services; the API (ui/api.py) is a contract, so every `studio.X` it calls
    exists on Studio, with the signature of the service method it forwards to."""
    import inspect
    import ast

    from pretrain_studio.studio import Studio

    tree = ast.parse((REPO / "pretrain_studio" / "ui" / "api.py").read_text(encoding="utf-8"))
    called = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Name) and n.value.id == "studio"}
    assert len(called) > 20
    for name in called - {"registry", "workspace"}:
        method = getattr(Studio, name)
        assert callable(method), name
        assert list(inspect.signature(method).parameters)[0] == "self", name

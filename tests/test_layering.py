"""The package's import graph (scripts/import_graph.py) stays layered: no new circle, no new upward import.

The graph still has the circles and upward arrows that issue 17 (architecture) is removing. They are listed
here exactly, so the test fails both when a change adds one (it names it) and when a change removes one
without striking it from the list (so the list only shrinks, down to nothing).
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

# What is left to remove (issue 17). Strike a line when its arrow or circle is gone.
KNOWN_UPWARD = {
    "training -> jobs",  # rank_worker runs its run through jobs.execute_run
    "training -> studio",  # rank_worker records a torchrun-started run through a whole Studio
}
KNOWN_CIRCLES = [
    ["jobs", "studio", "studio_finetune", "studio_runs", "training"],
]


@pytest.fixture(scope="module")
def summary():
    return import_graph.summary(import_graph.build())


def test_every_module_has_a_layer(summary):
    graph = import_graph.build(fine=True)
    for node in graph.nodes:
        import_graph.layer_of(node)  # raises, naming the module, when LAYERS lacks it


def test_no_import_runs_up_a_layer_but_the_known_ones(summary):
    got = set(summary["upward"])
    assert not got - KNOWN_UPWARD, f"new upward imports: {sorted(got - KNOWN_UPWARD)}"
    assert not KNOWN_UPWARD - got, f"gone, strike them from KNOWN_UPWARD: {sorted(KNOWN_UPWARD - got)}"


def test_no_import_circle_but_the_known_ones(summary):
    assert summary["circles"] == KNOWN_CIRCLES


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

"""The rules the test suite and the benchmarks live by (issue 15, "Trust"), each checked in a real subprocess:

- a skip for a missing dependency goes through conftest's require(); with CI=true it fails the run and names the
  dependency; the only skips CI allows are GPU-only tests without CUDA, listed by name; `real_data` tests without
  the shared data folder are skipped with one summary line (a failure with CI=true);
- every process the tests start is offline too: tests/offline/sitecustomize.py (on the PYTHONPATH that conftest
  puts in os.environ) refuses non-loopback connections, and loopback still works;
- every bench script starts with the runtime requirements alone: `--help` answers without pytest, Playwright or
  anything from tests/.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import OFFLINE_DIR, OFFLINE_ENV, REPO, AppServer

TINY_TESTS = '''
import pytest
from conftest import require, require_gpu


def test_passes():
    assert True


def test_needs_a_missing_package():
    require("fake-dependency-xyz", False, "pip install fake-dependency-xyz")


def test_on_gpu_only(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    require_gpu()


@pytest.mark.real_data
def test_reads_shared_data():
    assert True
'''


def run_tiny_suite(tmp_path: Path, select: str, ci: bool, data: bool = False) -> subprocess.CompletedProcess:
    """pytest in a subprocess on TINY_TESTS (with tests/conftest.py loaded as a plugin, so its hooks are the
    real ones), the tests chosen by `-k select`, CI on or off, the shared data folder there or not."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    real_data: reads the shared data folder\n")
    (tmp_path / "test_tiny.py").write_text(TINY_TESTS)
    shared = tmp_path / "shared_data"
    shared.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    env["PRETRAIN_STUDIO_DATA"] = str(shared if data else tmp_path / "no_such_folder")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
                           "-k", select, "test_tiny.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_skip_for_a_missing_dependency_is_a_skip_outside_ci(tmp_path):
    result = run_tiny_suite(tmp_path, "passes or missing_package", ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "CI:" not in result.stdout


def test_with_ci_a_skip_for_a_missing_dependency_fails_the_run_and_names_it(tmp_path):
    result = run_tiny_suite(tmp_path, "passes or missing_package", ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout  # nothing failed: the rule alone fails the run
    assert "CI: these tests were skipped for a missing dependency" in result.stdout
    assert "fake-dependency-xyz (pip install fake-dependency-xyz): 1 skipped: " \
           "test_tiny.py::test_needs_a_missing_package" in result.stdout


def test_with_ci_a_gpu_only_skip_is_allowed_and_listed_by_name(tmp_path):
    result = run_tiny_suite(tmp_path, "passes or gpu_only", ci=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GPU only: 1 tests skipped (no CUDA device): test_tiny.py::test_on_gpu_only" in result.stdout
    assert "CI:" not in result.stdout


def test_real_data_tests_without_the_folder_are_skipped_in_one_line_and_fail_in_ci(tmp_path):
    result = run_tiny_suite(tmp_path, "passes or shared_data", ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("real_data: 1 tests skipped: shared data folder not found "
                               "(set PRETRAIN_STUDIO_DATA)") == 1
    ci = run_tiny_suite(tmp_path, "passes or shared_data", ci=True)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "CI:   real_data (shared data folder not found (set PRETRAIN_STUDIO_DATA)): 1 skipped" in ci.stdout
    with_data = run_tiny_suite(tmp_path, "passes or shared_data", ci=True, data=True)
    assert with_data.returncode == 0 and "2 passed" in with_data.stdout, with_data.stdout + with_data.stderr


def test_every_skip_in_the_tests_goes_through_the_helper():
    """No pytest.skip / importorskip / skip marks outside conftest.py: require() (or the real_data marker) is the
    one way to skip, so the CI rule cannot be side-stepped."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.name == "conftest.py" or path == Path(__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("skip", "skipif", "importorskip") and \
                    isinstance(node.value, (ast.Name, ast.Attribute)) and \
                    ast.unparse(node.value) in ("pytest", "pytest.mark"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


# --- offline in every process the tests start -----------------------------------------------------------

CONNECT = textwrap.dedent('''
    import socket
    try:
        socket.create_connection(("203.0.113.1", 80), timeout=3)
        print("off-machine: connected")
    except OSError as exc:
        print("off-machine:", exc)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    socket.create_connection(server.getsockname(), timeout=3).close()
    print("loopback: connected")
    import pretrain_studio
    print("pretrain_studio:", pretrain_studio.__name__)
''')


def test_a_process_the_tests_start_cannot_leave_the_machine_but_reaches_loopback(tmp_path):
    # A plain subprocess inherits os.environ, which conftest gave OFFLINE_ENV's PYTHONPATH; run it from another
    # folder, so the repository is importable only through that PYTHONPATH too.
    result = subprocess.run([sys.executable, "-c", CONNECT], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "off-machine: [Errno 101] network access blocked in tests: ('203.0.113.1', 80)" in result.stdout
    assert "loopback: connected" in result.stdout and "pretrain_studio: pretrain_studio" in result.stdout


def test_the_guard_comes_from_the_offline_folder(tmp_path):
    """The control: without tests/offline on PYTHONPATH a child's sockets are plain (so the block above is the
    sitecustomize's doing); nothing here tries to connect anywhere."""
    code = "import socket; print(getattr(socket.socket.connect, '_offline_guard', False))"
    guarded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    plain = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (guarded.stdout.strip(), plain.stdout.strip()) == ("True", "False"), guarded.stderr + plain.stderr


def test_app_servers_and_cli_subprocesses_get_the_offline_folder_first_on_pythonpath(tmp_path):
    assert OFFLINE_ENV["PYTHONPATH"].split(os.pathsep)[0] == str(OFFLINE_DIR)
    assert os.environ["PYTHONPATH"] == OFFLINE_ENV["PYTHONPATH"]
    assert AppServer(tmp_path / "workspace").env["PYTHONPATH"] == OFFLINE_ENV["PYTHONPATH"]
    assert (OFFLINE_DIR / "sitecustomize.py").is_file()


# --- benchmarks: the runtime requirements are enough ----------------------------------------------------

BENCH = REPO / "bench"
BLOCKED = ("pytest", "_pytest", "playwright", "conftest", "tiny_models", "e2e", "tests")
RUN_BLOCKED = textwrap.dedent(f'''
    import importlib.abc, os, runpy, sys

    class Blocked(importlib.abc.MetaPathFinder):
        """Stands in for an install from requirements.txt alone: none of these can be imported."""
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in {BLOCKED!r} or top.startswith("test_"):
                raise ImportError(name + " is not a runtime requirement")
            return None

    sys.meta_path.insert(0, Blocked())
    script = sys.argv[1]
    sys.path.insert(0, os.path.dirname(script))
    if sys.argv[2] == "--help":
        sys.argv = [script, "--help"]
        runpy.run_path(script, run_name="__main__")
    else:
        __import__(os.path.basename(script)[:-3])
        print("imported")
''')


def bench_scripts() -> tuple[list[Path], list[Path]]:
    """(scripts, helper modules) in bench/: a script has a `__main__` block."""
    files = sorted(BENCH.glob("*.py"))
    scripts = [f for f in files if '__name__ == "__main__"' in f.read_text(encoding="utf-8")]
    return scripts, [f for f in files if f not in scripts]


def test_every_bench_answers_help_with_the_runtime_requirements_alone(tmp_path):
    scripts, helpers = bench_scripts()
    assert len(scripts) >= 14 and {p.name for p in helpers} == {"bench_support.py", "endless_run.py"}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it: python bench/x.py
    env["PRETRAIN_STUDIO_DATA"] = str(tmp_path / "no_such_folder")  # --help needs no data either
    processes = {path: subprocess.Popen([sys.executable, "-c", RUN_BLOCKED, str(path),
                                         "--help" if path in scripts else "--import"], cwd=REPO, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path in scripts + helpers}
    failures = []
    for path, process in processes.items():
        out, err = process.communicate(timeout=120)
        expected = f"usage: {path.name}" if path in scripts else "imported"
        if process.returncode != 0 or expected not in out:
            failures.append(f"{path.name}: exit {process.returncode}\n{out[-500:]}{err[-2000:]}")
    assert failures == []


def test_no_bench_imports_from_the_tests():
    for path in sorted(BENCH.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("pytest", "conftest", "e2e", "tests", "tiny_models") and \
                    not name.startswith("test_"), f"{path.name}:{node.lineno} imports {name}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value != "tests", f"{path.name}:{node.lineno} names the tests folder"
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not any("playwright" in ast.unparse(n) for n in top_level), f"{path.name} imports playwright at start"


MACHINE_PATH = re.compile(r"""(^|[\s"'(=`])/(work|home|root)/\w""")  # e.g. a checkout's or a data folder's path


def test_no_absolute_machine_path_in_the_repository():
    """A clone works anywhere: no file names a folder of one machine."""
    found = []
    for path in sorted(REPO.rglob("*")):
        parts = path.relative_to(REPO).parts
        if not path.is_file() or parts[0] in (".git", ".venv", "workspace") or "egg-info" in parts[0] or \
                "__pycache__" in parts or path.suffix in (".png", ".jpg", ".gz", ".pyc") or path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert found == []

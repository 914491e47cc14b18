"""Shared test fixtures and rules: an offline environment, real text, a temp workspace, a live app server,
and the skip rules.

Every test runs against a workspace in a temp folder (never ./workspace) and with the model hub switched off,
as on CI; the offline rule (tests/offline/) also covers every process the tests start.

Data. The default suite needs nothing outside the repository: real text comes from tests/data/ (see its
README) and assets/. Tests marked `real_data` read the larger shared sets (SST-2, WikiText-2, ...); they run
when `$PRETRAIN_STUDIO_DATA` or ../shared/data beside the checkout is there and are skipped otherwise, with
one line in the summary.

Skips. A test skips for a missing dependency only through `require()` (or the `real_data` marker, which uses
it), so the CI rule lives here: with `CI=true` every skip fails the run, naming what was missing, except
GPU-only tests on a machine without CUDA (`require_gpu()`), which are listed by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest

from pretrain_studio.shared_data import ENV_VAR as DATA_ENV_VAR
from pretrain_studio.shared_data import candidates as shared_data_candidates
from pretrain_studio.shared_data import find_shared_data

# The app-process launcher and the polling helper are shared with the benchmarks, which must not import from
# tests/ (they run with requirements.txt alone): they live in bench/bench_support.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_support import AppServer, free_port, wait_for  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
TEST_DATA = TESTS / "data"
OFFLINE_DIR = TESTS / "offline"  # sitecustomize.py + offline_guard.py: the offline rule for child processes

_spec = importlib.util.spec_from_file_location("offline_guard", OFFLINE_DIR / "offline_guard.py")
offline_guard = sys.modules.setdefault("offline_guard", importlib.util.module_from_spec(_spec))
if not hasattr(offline_guard, "install"):
    _spec.loader.exec_module(offline_guard)
is_local_address = offline_guard.is_local_address

# Every process the tests start inherits this (it is put into os.environ): the model hub and analytics off, and
# tests/offline first on PYTHONPATH, so its sitecustomize.py refuses non-loopback connections in that process
# too; the repository next, so `python -c "import pretrain_studio ..."` works from any folder.
_pythonpath = [str(OFFLINE_DIR), str(REPO)]
_pythonpath += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in _pythonpath]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "PYTHONPATH": os.pathsep.join(_pythonpath)}
os.environ.update(OFFLINE_ENV)

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# --- skips: one helper, one rule ----------------------------------------------------------------------------

MISSING_PREFIX = "missing dependency: "
GPU_PREFIX = "GPU only: "
MISSING: dict[str, str] = {}  # dependency -> how to install it, for every require() that skipped


def require(dependency: str, available: bool, how_to_install: str) -> None:
    """Skip the calling test (or module, at module level) when `dependency` is not `available`. Outside CI
    that is a skip; with CI=true the run fails at the end and names the dependency (tests/conftest.py's
    pytest_sessionfinish). Every skip for a missing dependency goes through here."""
    if available:
        return
    MISSING.setdefault(dependency, how_to_install)
    pytest.skip(f"{MISSING_PREFIX}{dependency} ({how_to_install})", allow_module_level=True)


def require_module(name: str, how_to_install: str, dependency: str | None = None):
    """The imported module `name`, or a skip through require() when it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(dependency or name, False, how_to_install)


def require_gpu() -> None:
    """Skip a GPU-only test on a machine without CUDA: the one skip allowed in CI (listed by name there)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip(f"{GPU_PREFIX}no CUDA device", allow_module_level=True)


# --- the shared real-data folder ----------------------------------------------------------------------------

def find_data() -> Path | None:
    """The shared real-data folder ($PRETRAIN_STUDIO_DATA, else ../shared/data beside the checkout), or None."""
    return find_shared_data()


HAVE_DATA = find_data() is not None
# Always a Path, so that modules can name shared files at import time; tests that read them are `real_data`.
DATA = find_data() or shared_data_candidates()[0]
WIKITEXT = DATA / "wikitext2_raw" / "wiki.test.raw"
REAL_DATA_REASON = f"shared data folder not found (set {DATA_ENV_VAR})"

# The in-repository real text (tests/data/README.md).
MOBY_DICK = TEST_DATA / "moby_dick_crlf.txt"  # ASCII, CRLF, hard-wrapped lines, 2,800 lines
CHESTERTON = TEST_DATA / "chesterton_latin1.txt"  # Latin-1, LF
HONGLOUMENG = TEST_DATA / "hongloumeng_start.txt"  # Chinese UTF-8, one paragraph a line
AUTHORS = {split: TEST_DATA / f"authors_{split}.csv" for split in ("train", "dev", "test")}  # text,label; 3 classes
NOVELS_ZH = {split: TEST_DATA / f"novels_zh_{split}.csv" for split in ("train", "dev", "test")}  # text,label; 3
SAMPLE_CORPUS = REPO / "assets" / "sample_corpus.txt"
SAMPLE_LABELLED = REPO / "assets" / "sample_labelled.csv"

# Small enough for a 2-core CI machine, big enough that loss visibly falls.
TINY_RUN = {
    "model_size": "tiny", "vocab_size": 1500, "max_steps": 40, "batch_size": 16, "max_seq_length": 64,
    "learning_rate": 2e-3, "warmup_steps": 5, "eval_steps": 10, "logging_steps": 5, "save_steps": 20,
    "eval_fraction": 0.1, "seed": 1,
}


def write_text_slice(path: Path, lines: int | None = None) -> Path:
    """The first `lines` lines (default: all 2,800, 150 KB) of tests/data/moby_dick_crlf.txt, bytes untouched
    (ASCII, CRLF, hard-wrapped), as a .txt file: the suite's "some real English text"."""
    with MOBY_DICK.open("rb") as src:
        chunk = src.read() if lines is None else b"".join(src.readline() for _ in range(lines))
    path.write_bytes(chunk)
    return path


write_wikitext_slice = write_text_slice  # the former name (the slice was WikiText-2's, in ../shared)


@pytest.fixture(scope="session")
def text_slice(tmp_path_factory) -> Path:
    """write_text_slice's whole file, once per session."""
    return write_text_slice(tmp_path_factory.mktemp("data") / "moby_slice.txt")


@pytest.fixture(scope="session")
def wikitext_slice(text_slice) -> Path:
    """The former name of `text_slice` (now a Gutenberg slice from tests/data, not WikiText-2)."""
    return text_slice


# --- pytest hooks: the real_data marker, the one-line summary, the CI rule ---------------------------------

def pytest_report_header(config):
    where = DATA if HAVE_DATA else f"not found ({REAL_DATA_REASON})"
    return [f"real_data: shared data folder {where}; CI rule {'on' if CI else 'off'} (CI={os.environ.get('CI', '')})"]


def pytest_collection_modifyitems(config, items):
    if HAVE_DATA:
        return
    marked = [item for item in items if item.get_closest_marker("real_data")]
    if marked:
        MISSING.setdefault("real_data", f"the shared data folder: set {DATA_ENV_VAR}")
    skip = pytest.mark.skip(reason=f"{MISSING_PREFIX}real_data ({REAL_DATA_REASON})")
    for item in marked:
        item.add_marker(skip)


_SKIPPED: list[tuple[str, str]] = []  # (test or module id, reason) of every skip in this run


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append((report.nodeid, _skip_reason(report)))


def pytest_collectreport(report):
    if report.skipped:
        _SKIPPED.append((report.nodeid, _skip_reason(report)))


def _split_skips():
    """(real_data skips, GPU-only skips, the others as (id, reason))."""
    real_data = [n for n, r in _SKIPPED if r.startswith(f"{MISSING_PREFIX}real_data ")]
    gpu = [n for n, r in _SKIPPED if r.startswith(GPU_PREFIX)]
    others = [(n, r) for n, r in _SKIPPED if not r.startswith(GPU_PREFIX) and n not in real_data]
    return real_data, gpu, others


def pytest_sessionfinish(session, exitstatus):
    """The CI rule: with CI=true a skip (other than a GPU-only test without CUDA) fails the run."""
    if CI and _ci_failures() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _ci_failures() -> dict[str, list[str]]:
    """reason -> the tests (or modules) skipped for it, for every skip that CI does not allow."""
    failures: dict[str, list[str]] = {}
    for nodeid, reason in _SKIPPED:
        if not reason.startswith(GPU_PREFIX):
            failures.setdefault(reason.removeprefix(MISSING_PREFIX), []).append(nodeid)
    return failures


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    real_data, gpu, _ = _split_skips()
    write = terminalreporter.write_line
    if real_data:
        write(f"real_data: {len(real_data)} tests skipped: {REAL_DATA_REASON}")
    if gpu:
        write(f"GPU only: {len(gpu)} tests skipped (no CUDA device): {', '.join(gpu)}")
    failures = _ci_failures() if CI else {}
    if failures:
        write("CI: these tests were skipped for a missing dependency (only GPU-only tests may skip in CI):", red=True)
        for reason, nodeids in failures.items():
            shown = ", ".join(nodeids[:3]) + (f" and {len(nodeids) - 3} more" if len(nodeids) > 3 else "")
            write(f"CI:   {reason}: {len(nodeids)} skipped: {shown}", red=True)
        write("CI: the run fails (exit status 1): install what is missing (scripts/setup.sh dev)", red=True)


@pytest.fixture
def studio(tmp_path):
    """A Studio on a fresh temp workspace (the sample corpus is registered), worker thread running."""
    from pretrain_studio.studio import Studio

    s = Studio(tmp_path / "workspace")
    yield s
    s.close()


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Tests run offline, as on CI: any connection that would leave this machine fails at once with an
    OSError naming the address (tests/offline/offline_guard.py), so a stray call to a model hub or an analytics
    server shows up as a failure, not a slow test. Processes the tests start get the same rule through
    tests/offline/sitecustomize.py (OFFLINE_ENV's PYTHONPATH, in os.environ)."""
    connect, connect_ex = offline_guard.guarded(socket.socket.connect, socket.socket.connect_ex)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """A live app process for this test module (API and browser tests)."""
    server = AppServer(tmp_path_factory.mktemp("app") / "workspace").start()
    yield server
    server.stop()

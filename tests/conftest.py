"""Shared test fixtures: an offline environment, real data slices, a temp workspace, a live app server.

Every test runs against a workspace in a temp folder (never ./workspace) and
with the model hub switched off, as on CI.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
os.environ.update(OFFLINE_ENV)

REPO = Path(__file__).resolve().parents[1]


def find_data() -> Path:
    """The shared real-data folder: $PRETRAIN_STUDIO_DATA, else ../shared/data beside the checkout,
    else /work/shared/data (where it lives on our machines when the checkout is elsewhere)."""
    candidates = [os.environ.get("PRETRAIN_STUDIO_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "wikitext2_raw").is_dir():
            return Path(candidate)
    raise RuntimeError("real test data not found: set PRETRAIN_STUDIO_DATA to the shared/data folder")


DATA = find_data()
WIKITEXT = DATA / "wikitext2_raw" / "wiki.test.raw"

# Small enough for a 2-core CI machine, big enough that loss visibly falls.
TINY_RUN = {
    "model_size": "tiny", "vocab_size": 1500, "max_steps": 40, "batch_size": 16, "max_seq_length": 64,
    "learning_rate": 2e-3, "warmup_steps": 5, "eval_steps": 10, "logging_steps": 5, "save_steps": 20,
    "eval_fraction": 0.1, "seed": 1,
}


def write_wikitext_slice(path: Path, lines: int = 600) -> Path:
    """The first `lines` lines of WikiText-2 (raw, CRLF) as a .txt file, bytes untouched."""
    with WIKITEXT.open("rb") as src:
        chunk = b"".join(src.readline() for _ in range(lines))
    path.write_bytes(chunk)
    return path


@pytest.fixture(scope="session")
def wikitext_slice(tmp_path_factory) -> Path:
    return write_wikitext_slice(tmp_path_factory.mktemp("data") / "wiki_slice.txt")


@pytest.fixture
def studio(tmp_path):
    """A Studio on a fresh temp workspace (the sample corpus is registered), worker thread running."""
    from pretrain_studio.studio import Studio

    s = Studio(tmp_path / "workspace")
    yield s
    s.close()


def wait_for(predicate, timeout: float = 300, interval: float = 0.5, message: str = "condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def is_local_address(family: int, address) -> bool:
    """True for a Unix socket or a loopback / unspecified IP address; a host name other than localhost is
    not local (connecting to it would mean a DNS look-up and a trip off this machine)."""
    if family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple):
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Tests run offline, as on CI: any connection that would leave this machine fails at once with an
    OSError naming the address (so a stray call to a model hub or an analytics server shows up as a failure,
    not a slow test). App servers in subprocesses get the offline environment through AppServer instead."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(sock, address):
        if not is_local_address(sock.family, address):
            raise OSError(errno.ENETUNREACH, f"network access blocked in tests: {address!r}")

    def connect(sock, address):
        refuse(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        refuse(sock, address)
        return real_connect_ex(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on a free port with its own workspace; `args` are extra serve flags,
    `env` extra environment variables (on top of this process's offline, no-analytics environment)."""

    def __init__(self, workspace: Path, args: list[str] | None = None, env: dict[str, str] | None = None):
        self.workspace = workspace
        self.args = list(args or [])
        self.env = {**os.environ, **OFFLINE_ENV, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workspace.parent / f"app-{self.port}.log"
        self.process = None

    def start(self) -> "AppServer":
        import urllib.request

        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(self.port), "--workspace", str(self.workspace),
             *self.args],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"app exited with {self.process.returncode}:\n{self.log()}")
            try:
                return urllib.request.urlopen(self.url, timeout=2).status == 200
            except OSError:
                return False

        wait_for(up, timeout=120, message="the app to answer")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """A live app process for this test module (API and browser tests)."""
    server = AppServer(tmp_path_factory.mktemp("app") / "workspace").start()
    yield server
    server.stop()

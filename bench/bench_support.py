"""What the benchmarks share, with the runtime requirements only (requirements.txt: no pytest, no Playwright
unless a bench drives a browser, and nothing from tests/).

- the shared data folder (`pretrain_studio.shared_data`): `require_shared_data("sst2", "stsa.binary.train")`
  gives the file or stops the bench with a message that says to set $PRETRAIN_STUDIO_DATA;
- `AppServer`: `python app.py` on a free port with its own workspace, offline, until `stop()`;
- `wait_for`, `free_port`, and `require_module` for a bench's optional dependency (Playwright).

Every bench parses its arguments (so `--help` answers at once) before it imports torch or starts anything.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pretrain_studio.shared_data import (  # noqa: E402,F401  (re-exported for the benches)
    SharedDataMissing,
    find_shared_data,
    require_shared_data,
)

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
WIKITEXT = ("wikitext2_raw", "wiki.test.raw")  # in the shared data folder: the benches' default English corpus
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PLAYWRIGHT = "pip install -r requirements-dev.txt (and Chromium: apt-get install chromium, or set $CHROMIUM)"
# Points in the Runs tab's loss chart (as tests/e2e/test_browser.py counts them): its traces are the only ones
# with these names.
LOSS_POINTS_JS = """() => {
    const names = new Set(["train loss", "eval loss", "learning rate"]);
    let most = 0;
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
        let n = 0;
        for (const trace of gd._fullData || []) if (names.has(trace.name) && trace.x) n += trace.x.length;
        most = Math.max(most, n);
    }
    return most;
}"""


def require_module(name: str, how_to_install: str):
    """The imported module, or a SystemExit naming what to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SystemExit(f"this benchmark needs {name} ({exc}): {how_to_install}") from None


def wait_for(predicate, timeout: float = 300, interval: float = 0.5, message: str = "condition"):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on a free port with its own workspace; `args` are extra serve flags,
    `env` extra environment variables (on top of this process's, with the model hub and analytics off)."""

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

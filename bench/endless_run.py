"""The real app on a temporary workspace with one pretraining run that goes on until stopped.

Shared by the benches that compare a run's speed in alternating windows (`watch_cost.py`,
`api_load.py`): they need a run long enough to outlast every window, launched as a user would,
through the app's API, and its own `tokens_per_second` rows.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_support import REPO, WIKITEXT, AppServer, require_shared_data, wait_for  # noqa: F401


class EndlessRun:
    """`python app.py` on a fresh workspace; `data` uploaded as a corpus; a `preset` run launched over the API
    (`via="app"`: it trains in the app's worker thread), or by the CLI in a process of its own on the same
    workspace (`via="cli"`: the app only serves it), which tells the app process's costs from the machine's."""

    def __init__(self, data: Path, preset: str, prefix: str, via: str = "app"):
        from gradio_client import Client, handle_file

        from pretrain_studio.registry import Registry

        tmp = Path(tempfile.mkdtemp(prefix=prefix))
        corpus = tmp / "corpus.txt"
        corpus.write_bytes(data.read_bytes())
        self.server = AppServer(tmp / "workspace").start()
        self.registry = Registry(self.server.workspace / "studio.db")
        self.client = Client(self.server.url, verbose=False)
        settings = {"model_size": preset, "vocab_size": 8000, "max_steps": 1_000_000, "batch_size": 16,
                    "max_seq_length": 128, "logging_steps": 10, "eval_steps": 1_000_000, "save_steps": 1_000_000,
                    "seed": 0}
        self.process = None
        if via == "cli":
            flags = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pretrain_studio", "pretrain", "--corpus", str(corpus), *flags,
                 "--workspace", str(self.server.workspace)], cwd=REPO, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            wait_for(lambda: any(r["kind"] == "pretrain" for r in self.registry.list_runs()), timeout=600,
                     message="the CLI's run")
            self.run_id = next(r["id"] for r in self.registry.list_runs() if r["kind"] == "pretrain")
        else:
            corpus_id = self.client.predict([handle_file(str(corpus))], "bench",
                                            api_name="/upload_corpus")["corpus_id"]
            self.run_id = self.client.predict({"corpus_id": corpus_id, **settings},
                                              api_name="/start_pretraining")["run_id"]
        wait_for(lambda: self.registry.metrics_since(self.run_id), timeout=600, interval=0.2,
                 message="the first metric row")

    def last_id(self) -> int:
        return self.registry.metrics_since(self.run_id)[-1]["id"]

    def speed_since(self, after_id: int) -> float:
        """Median of the run's tokens_per_second rows logged after `after_id` (one row per logging step)."""
        speeds = [m["value"] for m in self.registry.metrics_since(self.run_id, after_id)
                  if m["name"] == "tokens_per_second"]
        return statistics.median(speeds) if speeds else float("nan")

    def stop(self) -> None:
        try:
            self.client.predict(self.run_id, api_name="/stop_run")
        finally:
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=60)
            self.server.stop()

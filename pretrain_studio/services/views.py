"""Plain-data views of registry rows, shared by the services: what a runs table, a queue or a picker shows."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from ..config import SEQUENCE_TASK, TASKS


def run_summary(run: dict) -> dict:
    started, finished = run["started_at"], run["finished_at"]
    elapsed = ((finished or time.time()) - started) if started else 0.0
    return {
        "run_id": run["id"], "name": run["name"], "kind": run["kind"], "task": run_task(run), "status": run["status"],
        "step": run["step"], "max_steps": run["max_steps"], "device": run["device"],
        "corpus_id": run["corpus_id"], "dataset_id": run.get("dataset_id"), "parent_id": run["parent_id"],
        "error": run["error"],
        "created_at": run["created_at"], "started_at": started, "finished_at": finished,
        "elapsed_seconds": round(elapsed, 1),
    }


def run_task(run: dict) -> str | None:
    """A fine-tuning run's task (runs from before token classification are text classification); None for
    pretraining."""
    if run["kind"] != "finetune":
        return None
    task = (run.get("config") or {}).get("task")
    return task if task in TASKS else SEQUENCE_TASK


def cli_command(config_path: Path) -> str:
    """The command that trains this run's config again, without the app."""
    return f"pretrain-studio run {shlex.quote(str(config_path))}"

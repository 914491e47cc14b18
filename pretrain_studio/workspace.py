"""The workspace: one folder holding everything a user has made.

    <root>/studio.db           the SQLite registry (WAL mode)
    <root>/corpora/<id>/       each corpus as an Arrow dataset (memory-mapped)
    <root>/datasets/<id>/      each labelled dataset (train/validation/test) for fine-tuning
    <root>/predictions/        CSV files of batch predictions
    <root>/runs/<run_id>/      config.json, train.log, checkpoints/, model/
    <root>/cache/              trained tokenizers and packed blocks, keyed by data and settings
                               (safe to delete: the next run rebuilds what it needs)

The root comes from `--workspace`, else `PRETRAIN_STUDIO_HOME`, else `./workspace`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .registry import Registry

LOG_TAIL_LINES = 20


def read_log_tail(path, lines: int = LOG_TAIL_LINES, window: int = 64 * 1024) -> str:
    """The last lines of a log. Only the file's last `window` bytes are read: the monitor polls this every
    second, and its cost must not grow with the length of the run."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - window))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "".join(text.splitlines(keepends=True)[-lines:])


def default_root() -> Path:
    return Path(os.environ.get("PRETRAIN_STUDIO_HOME") or "workspace")


class Workspace:
    """Paths of one workspace and its registry; creates the folders on first use."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or default_root()).expanduser().resolve()
        self.corpora_dir = self.root / "corpora"
        self.datasets_dir = self.root / "datasets"
        self.runs_dir = self.root / "runs"
        self.cache_dir = self.root / "cache"
        self.db_path = self.root / "studio.db"
        self.is_new = not self.db_path.exists()
        for folder in (self.root, self.corpora_dir, self.datasets_dir, self.runs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(self.db_path)

    def corpus_dir(self, corpus_id: str) -> Path:
        return self.corpora_dir / corpus_id

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

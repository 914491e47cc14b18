"""The SQLite registry: corpora, runs and their metric time series. The only module with SQL.

The registry is the truth: training writes status and metrics here through
one TrainerCallback, the UI polls it (reading only rows it has not seen), and
a restart recovers from it. WAL mode lets the UI read while a run writes.
Every call opens its own short-lived connection, so any thread may call it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import run_owner
from .run_states import RESUMABLE, RunStatus, names

SCHEMA = """
CREATE TABLE IF NOT EXISTS corpora (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL,
    documents INTEGER NOT NULL,
    characters INTEGER NOT NULL,
    words INTEGER NOT NULL,
    stats_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL,
    rows INTEGER NOT NULL,
    labels_json TEXT NOT NULL,
    stats_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    config_json TEXT NOT NULL,
    corpus_id TEXT,
    dataset_id TEXT,
    parent_id TEXT,
    device TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    max_steps INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    info_json TEXT NOT NULL DEFAULT '{}',
    tags_json TEXT NOT NULL DEFAULT '[]',
    notes TEXT NOT NULL DEFAULT '',
    queue_pos REAL,
    owner_json TEXT,
    heartbeat_at REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    storage TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, id);
CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics(run_id, name, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, created_at);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_id);
"""
# One point per step of each metric of a run. Made by _migrate (not SCHEMA): a registry from an older version
# may hold duplicates (a resumed run recorded its first steps twice), which must go before the index can exist.
ONE_POINT_PER_STEP = "CREATE UNIQUE INDEX IF NOT EXISTS metrics_one_per_step ON metrics(run_id, name, step)"

# What a running run was asked to do (runs.stop_requested): end and keep a checkpoint, end and discard, or
# (a search trial behind the others: services/search.py) end and discard as `pruned`.
# The statuses themselves and what each allows: run_states.py.
STOP, CANCEL, PRUNE = 1, 2, 3
ENDS_AT_ONCE = (CANCEL, PRUNE)  # the requests a run obeys by ending without keeping anything


def new_id(prefix: str) -> str:
    """Short, sortable-enough, unique ids like 'run-20261129-0436-3fa2c1'."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class Registry:
    """Access to one workspace's `studio.db`."""

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            _add_missing_columns(db)
            _migrate(db)

    @contextmanager
    def _connect(self):
        # A short-lived connection per call: sqlite3 connections must not be
        # shared across threads, and the worker thread, the UI's timer
        # handlers and the API all call in concurrently.
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:  # commits on success, rolls back on error
                yield db
        finally:
            db.close()

    # --- corpora --------------------------------------------------------------

    def add_corpus(self, corpus_id: str, name: str, path: str, stats: dict) -> dict:
        with self._connect() as db:
            db.execute(
                "INSERT INTO corpora (id, name, path, created_at, documents, characters, words, stats_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (corpus_id, name, str(path), time.time(), stats["documents"], stats["characters"],
                 stats["words"], json.dumps(stats)),
            )
        return self.get_corpus(corpus_id)

    def get_corpus(self, corpus_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM corpora WHERE id = ?", (corpus_id,)).fetchone()
        return _corpus_dict(row) if row else None

    def list_corpora(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM corpora ORDER BY created_at DESC").fetchall()
        return [_corpus_dict(r) for r in rows]

    # --- labelled datasets -------------------------------------------------------

    def add_dataset(self, dataset_id: str, name: str, path: str, stats: dict) -> dict:
        rows = sum(stats["splits"].values())
        with self._connect() as db:
            db.execute(
                "INSERT INTO datasets (id, name, path, created_at, rows, labels_json, stats_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (dataset_id, name, str(path), time.time(), rows, json.dumps(stats["labels"]), json.dumps(stats)),
            )
        return self.get_dataset(dataset_id)

    def get_dataset(self, dataset_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
        return _dataset_dict(row) if row else None

    def list_datasets(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM datasets ORDER BY created_at DESC").fetchall()
        return [_dataset_dict(r) for r in rows]

    # --- runs -----------------------------------------------------------------

    def create_run(self, run_id: str, *, name: str, kind: str, config: dict, corpus_id: str | None,
                   parent_id: str | None, device: str, max_steps: int, status: str = "queued",
                   dataset_id: str | None = None, owner: dict | None = None) -> dict:
        """`owner` (run_owner.this_process()): the process that trains a run created `running`."""
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, name, kind, status, config_json, corpus_id, dataset_id, parent_id, device,"
                " created_at, started_at, max_steps, owner_json, heartbeat_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, kind, status, json.dumps(config), corpus_id, dataset_id, parent_id, device,
                 now, now if status == "running" else None, max_steps, run_owner.encode(owner),
                 now if owner else None),
            )
        return self.get_run(run_id)

    def run_exists(self, run_id: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def get_run(self, run_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_dict(row) if row else None

    def list_runs(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [_run_dict(r) for r in rows]

    def update_run(self, run_id: str, **values) -> None:
        """Set columns of a run; `info` is merged into the run's info JSON rather than replacing it."""
        info = values.pop("info", None)
        with self._connect() as db:
            if values:
                columns = ", ".join(f"{k} = ?" for k in values)
                db.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*values.values(), run_id))
            if info:
                row = db.execute("SELECT info_json FROM runs WHERE id = ?", (run_id,)).fetchone()
                merged = {**json.loads(row["info_json"]), **info} if row else info
                db.execute("UPDATE runs SET info_json = ? WHERE id = ?", (json.dumps(merged), run_id))

    def claim_next_queued(self, device: str, owner: dict | None = None) -> dict | None:
        """Atomically move the oldest queued run for `device` to running, owned by `owner` (default: this
        process, run_owner.py), and return it."""
        owner = owner or run_owner.this_process("app")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # no other worker may claim between SELECT and UPDATE
            row = db.execute(
                "SELECT id FROM runs WHERE status = 'queued' AND device = ?"
                " ORDER BY COALESCE(queue_pos, created_at), created_at, rowid LIMIT 1",
                (device,),
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?), error = NULL,"
                       " finished_at = NULL, stop_requested = 0, owner_json = ?, heartbeat_at = ? WHERE id = ?",
                       (now, run_owner.encode(owner), now, row["id"]))
        return self.get_run(row["id"])

    def claim_next_queued_id(self, run_id: str, owner: dict | None = None) -> dict | None:
        """Atomically move one given queued run to running (the CLI's `resume` trains it itself), owned by
        `owner` (default: this process)."""
        owner = owner or run_owner.this_process("cli")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            changed = db.execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL,"
                                 " stop_requested = 0, owner_json = ?, heartbeat_at = ?"
                                 " WHERE id = ? AND status = 'queued'",
                                 (run_owner.encode(owner), time.time(), run_id)).rowcount
        return self.get_run(run_id) if changed else None

    def queued_devices(self) -> list[str]:
        with self._connect() as db:
            rows = db.execute("SELECT DISTINCT device FROM runs WHERE status = 'queued'").fetchall()
        return [r["device"] for r in rows]

    def mark_interrupted(self, run_ids: list[str] | None = None, alive=None) -> list[str]:
        """Runs left `running` by an owner that has gone (run_owner.py) become `interrupted`; runs whose owner
        still lives (a CLI command training in a terminal, another app) stay `running`. All running runs, or
        only `run_ids`. `alive(owner, heartbeat_at, run_id)` decides (default: run_owner.owner_alive)."""
        alive = alive or run_owner.owner_alive
        where, args = "", ()
        if run_ids is not None:
            if not run_ids:
                return []
            where, args = f" AND id IN ({','.join('?' * len(run_ids))})", tuple(run_ids)
        gone = []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # nobody claims, beats or finishes a run between the look and the mark
            rows = db.execute(f"SELECT id, owner_json, heartbeat_at FROM runs WHERE status = 'running'{where}",
                              args).fetchall()
            now = time.time()
            for row in rows:
                owner = run_owner.decode(row["owner_json"])
                if alive(owner, row["heartbeat_at"], row["id"]):
                    continue
                who = "the app" if owner is None else run_owner.describe(owner)  # None: a row of an older version
                db.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?",
                           (now, f"{who} stopped while this run was training; resume it from its last checkpoint",
                            row["id"]))
                gone.append(row["id"])
        return gone

    def heartbeat(self, run_id: str, owner: dict) -> bool:
        """The owner says it still trains the run (run_owner.Heartbeat); False when it is no longer the owner."""
        with self._connect() as db:
            return db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running' AND owner_json = ?",
                              (time.time(), run_id, run_owner.encode(owner))).rowcount > 0

    def reset_for_resume(self, run_id: str, keep_through_step: int | None, **values) -> bool:
        """Queue a run again to continue after step `keep_through_step` (its newest complete checkpoint; None:
        it starts over). In one transaction: the metric rows after that step (all of them when None) are
        dropped, so the resumed run never records a second point for a step, and the run becomes `queued`
        (with `values` set) if its status still allows a resume. False (and nothing changed) otherwise."""
        resumable = names(RESUMABLE)
        values = {**values, "status": "queued", "error": None, "finished_at": None, "stop_requested": 0,
                  "queue_pos": None, "owner_json": None, "heartbeat_at": None, "step": keep_through_step or 0}
        columns = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            changed = db.execute(f"UPDATE runs SET {columns} WHERE id = ? AND status IN"
                                 f" ({','.join('?' * len(resumable))})",
                                 (*values.values(), run_id, *resumable)).rowcount
            if changed:
                db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?",
                           (run_id, -1 if keep_through_step is None else keep_through_step))
        return bool(changed)

    def request_stop(self, run_id: str, mode: int = STOP) -> None:
        self.update_run(run_id, stop_requested=mode)

    def leave_queue(self, run_id: str, status: RunStatus, error: str | None = None) -> bool:
        """A queued run ends before it started (Stop: `stopped`, Cancel: `cancelled`); False when it is no
        longer queued (a worker claimed it meanwhile: then ask the running run to stop instead)."""
        if not RunStatus.QUEUED.can_become(status):
            raise ValueError(f"a queued run cannot become {status}")
        with self._connect() as db:
            return db.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?",
                              (str(status), error, time.time(), run_id, str(RunStatus.QUEUED))).rowcount > 0

    def set_tags(self, run_id: str, tags: list[str], notes: str | None = None) -> None:
        """Replace a run's tags (and its notes, unless None)."""
        values = {"tags_json": json.dumps(sorted(set(tags)))}
        if notes is not None:
            values["notes"] = notes
        self.update_run(run_id, **values)

    def stop_requested(self, run_id: str) -> int:
        """0 = carry on, STOP = save a checkpoint and end, CANCEL = end without keeping anything."""
        with self._connect() as db:
            row = db.execute("SELECT stop_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return int(row["stop_requested"]) if row else 0

    # --- queue order, names, tags, deletion -------------------------------------------

    def queue(self) -> list[dict]:
        """Queued runs in the order they will run."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE status = 'queued' ORDER BY COALESCE(queue_pos, created_at),"
                              " created_at").fetchall()
        return [_run_dict(r) for r in rows]

    def set_queue_order(self, run_ids: list[str]) -> None:
        """Give queued runs consecutive positions in this order (others keep their place after them)."""
        with self._connect() as db:
            for position, run_id in enumerate(run_ids):
                db.execute("UPDATE runs SET queue_pos = ? WHERE id = ? AND status = 'queued'", (position, run_id))

    def dependents(self, run_id: str) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs WHERE parent_id = ? ORDER BY created_at", (run_id,)).fetchall()
        return [_run_dict(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def delete_metrics_after(self, run_id: str, step: int) -> int:
        """On resume from a checkpoint at `step`: the steps after it will be trained again, so their rows go
        (step -1: all of them, for a run that starts over)."""
        with self._connect() as db:
            return db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, step)).rowcount

    # --- hyperparameter searches (their trials and state live in Optuna's storage: search/storage.py) -------

    def add_study(self, study_id: str, name: str, storage: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO studies (id, name, storage, created_at) VALUES (?, ?, ?, ?)",
                       (study_id, name, storage, time.time()))

    def get_study(self, study_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone()
        return dict(row) if row else None

    def set_study_storage(self, study_id: str, storage: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE studies SET storage = ? WHERE id = ?", (storage, study_id))

    def list_studies(self) -> list[dict]:
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM studies ORDER BY created_at DESC").fetchall()]

    # --- metrics --------------------------------------------------------------

    def add_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        """Record values at `step`. A metric already recorded at that step is replaced (the newer row, with a
        new id, so pollers see it): the registry never holds two points for one step of one metric."""
        now = time.time()
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, name, value, time) VALUES (?, ?, ?, ?, ?)",
                [(run_id, step, name, float(value), now) for name, value in values.items()],
            )
            db.execute("UPDATE runs SET step = MAX(step, ?) WHERE id = ?", (step, run_id))

    def final_metrics(self, run_ids: list[str] | None = None) -> dict[str, dict[str, dict]]:
        """Per run and metric name: the last, lowest and highest value (one query for the whole runs table)."""
        where, args = "", ()
        if run_ids is not None:
            where = f"WHERE run_id IN ({','.join('?' * len(run_ids))})"
            args = tuple(run_ids)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT run_id, name, MIN(value) AS low, MAX(value) AS high,"
                f" (SELECT value FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.name = m.name"
                f"  ORDER BY id DESC LIMIT 1) AS last"
                f" FROM metrics m {where} GROUP BY run_id, name", args).fetchall()
        out: dict[str, dict[str, dict]] = {}
        for r in rows:
            out.setdefault(r["run_id"], {})[r["name"]] = {"last": r["last"], "min": r["low"], "max": r["high"]}
        return out

    def metric_range(self, run_id: str, name: str, after_step: int = -1) -> tuple[float | None, float | None]:
        """(lowest, highest) value of one metric of a run at steps after `after_step`; (None, None) when none."""
        with self._connect() as db:
            row = db.execute("SELECT MIN(value) AS low, MAX(value) AS high FROM metrics WHERE run_id = ? AND name = ?"
                             " AND step > ?", (run_id, name, after_step)).fetchone()
        return row["low"], row["high"]

    def metrics_since(self, run_id: str, after_id: int = 0) -> list[dict]:
        """Metric rows with id > after_id, oldest first: pollers pass the last id they saw."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, step, name, value, time FROM metrics WHERE run_id = ? AND id > ? ORDER BY id",
                (run_id, after_id),
            ).fetchall()
        return [dict(r) for r in rows]


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Workspaces made by an older version lack newer columns; add them in place (data is kept)."""
    present = {r["name"] for r in db.execute("PRAGMA table_info(runs)").fetchall()}
    for column, declaration in (("dataset_id", "TEXT"), ("tags_json", "TEXT NOT NULL DEFAULT '[]'"),
                                ("notes", "TEXT NOT NULL DEFAULT ''"), ("queue_pos", "REAL"),
                                ("owner_json", "TEXT"), ("heartbeat_at", "REAL")):
        if column not in present:
            db.execute(f"ALTER TABLE runs ADD COLUMN {column} {declaration}")


def _migrate(db: sqlite3.Connection) -> None:
    """Constraints newer than a workspace: duplicate metric points (the same step of the same metric of one
    run, left by a resume of an older version) are reduced to the newest, then the unique index is made."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'metrics_one_per_step'").fetchone():
        return
    db.execute("DELETE FROM metrics WHERE id NOT IN (SELECT MAX(id) FROM metrics GROUP BY run_id, name, step)")
    db.execute(ONE_POINT_PER_STEP)


def _dataset_dict(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["labels"] = json.loads(data.pop("labels_json"))
    data["stats"] = json.loads(data.pop("stats_json"))
    return data


def _corpus_dict(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["stats"] = json.loads(data.pop("stats_json"))
    return data


def _run_dict(row: sqlite3.Row) -> dict:
    data = dict(row)
    data["config"] = json.loads(data.pop("config_json"))
    data["info"] = json.loads(data.pop("info_json"))
    data["tags"] = json.loads(data.pop("tags_json"))
    data["owner"] = run_owner.decode(data.pop("owner_json", None))
    return data

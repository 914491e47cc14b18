"""Registry: a real SQLite file in WAL mode; pollers get only new rows; the queue is claimed in order."""

import sqlite3

from pretrain_studio.registry import Registry


def make_run(reg, run_id, device="cpu", status="queued"):
    return reg.create_run(run_id, name=run_id, kind="pretrain", config={"a": 1}, corpus_id=None, parent_id=None,
                          device=device, max_steps=10, status=status)


def test_database_is_a_wal_sqlite_file(tmp_path):
    Registry(tmp_path / "studio.db")
    with sqlite3.connect(tmp_path / "studio.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"corpora", "runs", "metrics"} <= tables


def test_metrics_since_returns_only_unseen_rows(tmp_path):
    reg = Registry(tmp_path / "studio.db")
    make_run(reg, "r1")
    reg.add_metrics("r1", 5, {"train_loss": 3.0, "learning_rate": 1e-3})
    first = reg.metrics_since("r1")
    assert [(m["step"], m["name"]) for m in first] == [(5, "train_loss"), (5, "learning_rate")]
    reg.add_metrics("r1", 10, {"train_loss": 2.5})
    newer = reg.metrics_since("r1", first[-1]["id"])
    assert [(m["step"], m["value"]) for m in newer] == [(10, 2.5)]
    assert reg.get_run("r1")["step"] == 10


def test_queue_is_claimed_oldest_first_per_device(tmp_path):
    reg = Registry(tmp_path / "studio.db")
    make_run(reg, "a")
    make_run(reg, "b", device="cuda:0")
    make_run(reg, "c")
    assert reg.claim_next_queued("cpu")["id"] == "a"
    assert reg.get_run("a")["status"] == "running"
    assert reg.claim_next_queued("cpu")["id"] == "c"
    assert reg.claim_next_queued("cpu") is None
    assert reg.queued_devices() == ["cuda:0"]


def test_restart_marks_running_runs_interrupted_and_keeps_queued(tmp_path):
    reg = Registry(tmp_path / "studio.db")
    make_run(reg, "running", status="running")
    make_run(reg, "waiting")
    assert Registry(tmp_path / "studio.db").mark_interrupted() == ["running"]
    assert reg.get_run("running")["status"] == "interrupted"
    assert "resume" in reg.get_run("running")["error"]
    assert reg.get_run("waiting")["status"] == "queued"


def test_info_is_merged_not_replaced(tmp_path):
    reg = Registry(tmp_path / "studio.db")
    make_run(reg, "r")
    reg.update_run("r", info={"parameters": 10})
    reg.update_run("r", info={"device": "cpu"})
    assert reg.get_run("r")["info"] == {"parameters": 10, "device": "cpu"}


def test_stop_flag(tmp_path):
    reg = Registry(tmp_path / "studio.db")
    make_run(reg, "r")
    assert not reg.stop_requested("r")
    reg.request_stop("r")
    assert reg.stop_requested("r")

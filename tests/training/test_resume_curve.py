"""A resumed run records one curve: never two points for the same step of the same metric.

Resuming drops the run's metric rows after its newest complete checkpoint (all of them when it has none) in
the same transaction that queues it again; the registry also holds a unique index on (run, metric, step),
made in place (duplicates reduced to the newest row) when an older workspace is opened. The live monitor,
left open across a resume, reads the curves again once a step comes back, so the plot shows one curve too.
Real training on a real text (Moby-Dick, CRLF), tiny model; the trainer runs in the test's own threads
(no worker), so every look at the registry between the phases is deterministic.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import zipfile
from collections import Counter

import gradio as gr
import pytest
from conftest import REPO, wait_for

from pretrain_studio.training.execute import execute_run
from pretrain_studio.registry import Registry
from pretrain_studio.training.checkpoints import MARKER, newest_complete_checkpoint

CORPUS = REPO / "tests" / "data" / "moby_dick_crlf.txt"
QUICK = {"model_size": "tiny", "vocab_size": 800, "max_seq_length": 32, "batch_size": 8, "learning_rate": 2e-3,
         "warmup_steps": 2, "logging_steps": 1, "eval_steps": 2, "eval_fraction": 0.05, "seed": 3,
         "max_steps": 100_000, "device": "cpu"}


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    """(studio without a worker, corpus id): the test trains runs itself, in threads it controls."""
    from pretrain_studio.studio import Studio

    studio = Studio(tmp_path_factory.mktemp("resume") / "workspace", start_worker=False)
    corpus = studio.upload_corpus([CORPUS], "moby", txt_mode="paragraphs")
    yield studio, corpus["corpus_id"]
    studio.close()


def train_until_stopped(studio, run_id: str, at_least_step: int) -> None:
    """Claim the queued run, train it in a thread, press Stop once it has passed `at_least_step`."""
    run = studio.registry.claim_next_queued("cpu")
    assert run["id"] == run_id
    thread = threading.Thread(target=execute_run, args=(studio.workspace, run))
    thread.start()
    wait_for(lambda: studio.registry.get_run(run_id)["step"] >= at_least_step, timeout=300, interval=0.1,
             message=f"step {at_least_step}")
    studio.stop_run(run_id)
    thread.join(timeout=300)
    assert studio.registry.get_run(run_id)["status"] == "stopped"


def resume_and_train(studio, run_id: str, max_steps: int) -> dict:
    resumed = studio.resume_run(run_id, {"max_steps": max_steps})
    run = studio.registry.claim_next_queued("cpu")
    assert run["id"] == run_id
    assert execute_run(studio.workspace, run) == "completed", studio.registry.get_run(run_id)["error"]
    return resumed


def points(studio, run_id: str) -> list[tuple[str, int]]:
    return [(m["name"], m["step"]) for m in studio.registry.metrics_since(run_id)]


def assert_one_point_per_step(pairs) -> None:
    twice = [pair for pair, n in Counter(pairs).items() if n > 1]
    assert not twice, f"recorded more than once: {twice[:10]}"


def unmark_newest_checkpoint(studio, run_id: str) -> None:
    """The newest checkpoint's save 'did not finish' (no completion marker): it is never resumed from."""
    checkpoint = newest_complete_checkpoint(studio.workspace.run_dir(run_id) / "checkpoints")
    (checkpoint / MARKER).unlink()


def test_stopped_before_any_complete_checkpoint_resumes_from_zero_with_one_curve(desk):
    from pretrain_studio.ui.monitor_tab import build_monitor_tab

    studio, corpus_id = desk
    run_id = studio.start_pretraining({**QUICK, "corpus_id": corpus_id, "save_steps": 1000})["run_id"]
    train_until_stopped(studio, run_id, 5)
    unmark_newest_checkpoint(studio, run_id)  # the Stop's checkpoint only: now there is no complete one
    before = points(studio, run_id)
    stopped_at = studio.registry.get_run(run_id)["step"]
    assert ("eval_loss", 0) in before and ("train_loss", stopped_at) in before

    # The live monitor, open on the run across the resume.
    with gr.Blocks() as demo:
        build_monitor_tab(studio)
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer))
    poll = next(f.fn for f in demo.fns.values() if (timer._id, "tick") in f.targets)
    *_, state, _ = poll(run_id, {"run_id": None, "after_id": 0, "series": {}}, False)
    assert state["series"]["train_loss"].latest[0] == stopped_at

    resumed = studio.resume_run(run_id, {"max_steps": stopped_at + 3})
    assert resumed["from_checkpoint"] is None
    # Queued again and every old row gone, step 0's included, in the same transaction.
    run = studio.registry.get_run(run_id)
    assert (run["status"], run["step"], points(studio, run_id)) == ("queued", 0, [])

    claimed = studio.registry.claim_next_queued("cpu")
    assert execute_run(studio.workspace, claimed) == "completed", studio.registry.get_run(run_id)["error"]
    after = points(studio, run_id)
    assert_one_point_per_step(after)
    final = stopped_at + 3
    assert sorted(s for n, s in after if n == "train_loss") == list(range(1, final + 1))
    assert sorted(s for n, s in after if n == "eval_loss") == list(range(0, final + 1, 2)) + (
        [final] if final % 2 else [])

    # The monitor saw step 1 again after step `stopped_at`: it read the curves again, one point per step.
    _, figure, *_, state, _ = poll(run_id, state, False)
    drawn = {trace.name: list(trace.x) for trace in figure.data}
    assert drawn["train loss"] == list(range(1, final + 1))
    assert drawn["eval loss"] == sorted(set(s for n, s in after if n == "eval_loss"))

    # The export's metrics.csv: one row per metric and step.
    with zipfile.ZipFile(studio.export_run(run_id)) as archive:
        name = next(n for n in archive.namelist() if n.endswith("metrics.csv"))
        rows = list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
    assert_one_point_per_step([(r["name"], int(r["step"])) for r in rows])
    assert len(rows) == len(after)


def test_stopped_after_a_checkpoint_continues_the_curve_without_a_gap_or_a_repeat(desk):
    studio, corpus_id = desk
    run_id = studio.start_pretraining({**QUICK, "corpus_id": corpus_id, "save_steps": 3})["run_id"]
    train_until_stopped(studio, run_id, 7)
    stopped_at = studio.registry.get_run(run_id)["step"]
    unmark_newest_checkpoint(studio, run_id)  # resume from the one before the Stop's: rows after it must go
    checkpoint = newest_complete_checkpoint(studio.workspace.run_dir(run_id) / "checkpoints")
    kept_step = int(checkpoint.name.split("-")[1])
    assert kept_step < stopped_at
    kept = [m for m in studio.registry.metrics_since(run_id) if m["step"] <= kept_step]

    resumed = studio.resume_run(run_id, {"max_steps": stopped_at + 3})
    assert resumed["from_checkpoint"] == checkpoint.name
    assert studio.registry.metrics_since(run_id) == kept  # the rows after the checkpoint went as it was queued
    assert studio.registry.get_run(run_id)["step"] == kept_step

    claimed = studio.registry.claim_next_queued("cpu")
    assert execute_run(studio.workspace, claimed) == "completed", studio.registry.get_run(run_id)["error"]
    after = studio.registry.metrics_since(run_id)
    assert after[:len(kept)] == kept  # the points up to the checkpoint are the same rows, untouched
    pairs = [(m["name"], m["step"]) for m in after]
    assert_one_point_per_step(pairs)
    assert sorted(s for n, s in pairs if n == "train_loss") == list(range(1, stopped_at + 4))  # no gap, no repeat
    assert min(m["step"] for m in after[len(kept):]) == kept_step + 1


def test_an_older_registry_with_duplicate_points_is_cleaned_and_indexed_in_place(tmp_path):
    db_path = tmp_path / "studio.db"
    with sqlite3.connect(db_path) as db:  # the tables as an older version made them: no owner, no unique index
        db.executescript("""
            CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
                config_json TEXT NOT NULL, corpus_id TEXT, parent_id TEXT, device TEXT, created_at REAL NOT NULL,
                started_at REAL, finished_at REAL, step INTEGER NOT NULL DEFAULT 0,
                max_steps INTEGER NOT NULL DEFAULT 0, error TEXT, stop_requested INTEGER NOT NULL DEFAULT 0,
                info_json TEXT NOT NULL DEFAULT '{}');
            CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT,
                run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
                name TEXT NOT NULL, value REAL NOT NULL, time REAL NOT NULL);
        """)
        db.execute("INSERT INTO runs (id, name, kind, status, config_json, created_at) VALUES"
                   " ('r', 'old', 'pretrain', 'stopped', '{}', 0)")
        rows = [(step, "train_loss", 9.0 - step) for step in range(1, 5)]  # the first attempt
        rows += [(step, "train_loss", 5.0 - step) for step in range(1, 7)]  # resumed from scratch: 1-4 again
        db.executemany("INSERT INTO metrics (run_id, step, name, value, time) VALUES ('r', ?, ?, ?, 0)", rows)

    registry = Registry(db_path)
    kept = registry.metrics_since("r")
    assert [(m["step"], m["value"]) for m in kept] == [(s, 5.0 - s) for s in range(1, 7)]  # the newest of each
    run = registry.get_run("r")
    assert run["owner"] is None and run["tags"] == []  # the newer columns were added too
    with pytest.raises(sqlite3.IntegrityError):
        with sqlite3.connect(db_path) as db:
            db.execute("INSERT INTO metrics (run_id, step, name, value, time) VALUES ('r', 3, 'train_loss', 0, 0)")
    registry.add_metrics("r", 3, {"train_loss": 0.5})  # recorded again: replaces, with a new id for pollers
    again = registry.metrics_since("r", kept[-1]["id"])
    assert [(m["step"], m["value"]) for m in again] == [(3, 0.5)]
    assert Counter((m["name"], m["step"]) for m in registry.metrics_since("r"))[("train_loss", 3)] == 1
    Registry(db_path)  # opening it again changes nothing
    assert len(registry.metrics_since("r")) == 6


def test_resume_is_refused_and_changes_nothing_once_the_run_is_no_longer_resumable(tmp_path):
    registry = Registry(tmp_path / "studio.db")
    registry.create_run("r", name="r", kind="pretrain", config={}, corpus_id=None, parent_id=None, device="cpu",
                        max_steps=10, status="completed")
    registry.add_metrics("r", 5, {"train_loss": 1.0})
    assert not registry.reset_for_resume("r", None, max_steps=20)
    assert registry.get_run("r")["status"] == "completed" and len(registry.metrics_since("r")) == 1
    registry.update_run("r", status="stopped")
    registry.add_metrics("r", 8, {"train_loss": 0.8})
    assert registry.reset_for_resume("r", 5, max_steps=20)
    run = registry.get_run("r")
    assert (run["status"], run["step"], run["max_steps"]) == ("queued", 5, 20)
    assert [m["step"] for m in registry.metrics_since("r")] == [5]


def test_a_finetuning_run_resumed_without_a_complete_checkpoint_records_one_curve(desk):
    studio, corpus_id = desk
    done = [r["id"] for r in studio.registry.list_runs() if r["kind"] == "pretrain" and r["status"] == "completed"]
    if done:  # a model of the tests above
        base = done[0]
    else:  # run on its own: make one
        base = studio.start_pretraining({**QUICK, "corpus_id": corpus_id, "max_steps": 2})["run_id"]
        assert execute_run(studio.workspace, studio.registry.claim_next_queued("cpu")) == "completed"
    data = REPO / "tests" / "data"
    dataset = studio.upload_dataset("authors", data / "authors_train.csv", "text", "label",
                                    data / "authors_dev.csv", data / "authors_test.csv")
    run_id = studio.start_finetuning({"dataset_id": dataset["dataset_id"], "base_model": base, "method": "full",
                                      "max_steps": 100_000, "batch_size": 8, "max_seq_length": 32,
                                      "eval_steps": 2, "logging_steps": 1, "device": "cpu"})["run_id"]
    train_until_stopped(studio, run_id, 3)
    for marker in (studio.workspace.run_dir(run_id) / "checkpoints").glob(f"checkpoint-*/{MARKER}"):
        marker.unlink()  # no complete checkpoint left: the resumed run starts over
    stopped_at = studio.registry.get_run(run_id)["step"]
    assert studio.resume_run(run_id, {"max_steps": stopped_at + 1})["from_checkpoint"] is None
    assert points(studio, run_id) == []
    claimed = studio.registry.claim_next_queued("cpu")
    assert execute_run(studio.workspace, claimed) == "completed", studio.registry.get_run(run_id)["error"]
    after = points(studio, run_id)
    assert_one_point_per_step(after)
    assert sorted(s for n, s in after if n == "train_loss") == list(range(1, stopped_at + 2))
    assert ("eval_f1", 0) in after

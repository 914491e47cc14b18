"""Each setting a user can touch is trained with at least once: early stopping, class weights, SGD, every
learning-rate schedule, gradient accumulation, epochs instead of steps, TensorBoard, sentence pairs, the small
and medium presets, fine-tuning resume; plus an upgrade of a registry written by an older version and the
forced end of a Cancel that a launch does not obey.

Runs are a few steps of a tiny model, pretrained once for the module on in-repository text; each test checks
what a user would see (the run's status, step, info, log, curves, files), never timings."""

import csv
import json
import math
import sqlite3
import sys
import time

import pytest
import torch
from conftest import REPO, require, wait_for

from pretrain_studio.config import MODEL_PRESETS, SCHEDULERS
from pretrain_studio.registry import Registry
from pretrain_studio.studio import Studio

DATA = REPO / "tests" / "data"
BASE_RUN = {"model_size": "tiny", "vocab_size": 1500, "max_steps": 20, "batch_size": 16, "max_seq_length": 64,
            "learning_rate": 2e-3, "warmup_steps": 5, "eval_steps": 10, "logging_steps": 5, "save_steps": 100,
            "seed": 1}
QUICK = {"max_steps": 6, "batch_size": 8, "max_seq_length": 48, "eval_steps": 3, "logging_steps": 1,
         "learning_rate": 1e-3, "method": "full", "pooling": "mean", "head_init": "random", "seed": 0}


def ended(studio, run_id, timeout=300):
    return wait_for(lambda: (s := studio.run_status(run_id))["status"] not in ("queued", "running") and s,
                    timeout=timeout, message=f"run {run_id} to end")


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def authors(split):
    with open(DATA / f"authors_{split}.csv", newline="", encoding="utf-8") as fh:
        return [(r["text"], r["label"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A studio with a tiny base model and the authors dataset."""
    studio = Studio(tmp_path_factory.mktemp("settings") / "workspace")
    corpus = studio.upload_corpus([DATA / "moby_dick_crlf.txt"], "moby dick")
    base = studio.start_pretraining({**BASE_RUN, "corpus_id": corpus["corpus_id"]})["run_id"]
    assert ended(studio, base)["status"] == "completed"
    dataset = studio.upload_dataset("authors", DATA / "authors_train.csv", "text", "label",
                                    validation_file=DATA / "authors_dev.csv", test_file=DATA / "authors_test.csv")
    yield {"studio": studio, "base": base, "dataset": dataset["dataset_id"], "corpus": corpus["corpus_id"]}
    studio.close()


def finetune(env, **values):
    studio = env["studio"]
    run_id = studio.start_finetuning({**QUICK, "dataset_id": env["dataset"], "base_model": env["base"],
                                      **values})["run_id"]
    return ended(studio, run_id)


def series(studio, run_id, name):
    return {m["step"]: m["value"] for m in studio.run_metrics(run_id) if m["name"] == name}


# --- fine-tuning settings ---------------------------------------------------------------------------------------


def test_early_stopping_stops_and_says_at_which_step_and_why(env):
    # A learning rate that changes nothing: the eval accuracy cannot improve, so patience 2 runs out.
    status = finetune(env, max_steps=60, eval_steps=2, learning_rate=1e-12, early_stopping_patience=2,
                      early_stopping_metric="eval_accuracy")
    assert status["status"] == "completed", status["error"]
    assert status["step"] < 60  # it stopped early ...
    stopped = status["info"]["early_stopped"]  # ... and says where and why
    assert stopped["step"] == status["step"]
    assert stopped["metric"] == "eval_accuracy" and stopped["patience"] == 2
    assert "eval_accuracy did not improve for 2 evaluation(s)" in stopped["reason"]
    evals = sorted(series(env["studio"], status["run_id"], "eval_accuracy"))
    assert evals[-1] == status["step"]  # the evaluation that ran out of patience is the last point
    assert f"early stopping at step {status['step']} of 60: eval_accuracy did not improve" in \
        env["studio"].log_tail(status["run_id"], 50)


def test_early_stopping_off_trains_every_step(env):
    status = finetune(env, max_steps=6, eval_steps=2, learning_rate=1e-12)
    assert status["step"] == 6 and "early_stopped" not in status["info"]


def test_class_weights_weight_the_rare_classes_up(env, tmp_path):
    studio = env["studio"]
    train = authors("train")
    counts = {"Austen": 80, "Shakespeare": 20, "Whitman": 10}  # imbalanced on purpose
    kept = [row for label, n in counts.items() for row in [r for r in train if r[1] == label][:n]]
    path = write_csv(tmp_path / "imbalanced.csv", ["text", "label"], kept)
    dataset = studio.upload_dataset("imbalanced", path, "text", "label", validation_file=DATA / "authors_dev.csv")
    status = finetune({**env, "dataset": dataset["dataset_id"]}, class_weights=True)
    assert status["status"] == "completed", status["error"]
    weights = status["info"]["class_weights"]
    # Inverse frequency, scaled so a balanced set would weigh 1 everywhere: 110 / (3 x count).
    for label, n in counts.items():
        assert weights[label] == pytest.approx(110 / (3 * n), rel=1e-6)
    assert all(math.isfinite(v) for v in series(studio, status["run_id"], "train_loss").values())


def test_sgd_trains_with_momentum(env):
    status = finetune(env, optimizer="sgd", learning_rate=0.05)
    assert status["status"] == "completed", status["error"]
    checkpoints = sorted((env["studio"].workspace.run_dir(status["run_id"]) / "checkpoints").glob("checkpoint-*"))
    state = torch.load(checkpoints[-1] / "optimizer.pt", weights_only=False)
    slots = {key for per_parameter in state["state"].values() for key in per_parameter}
    assert slots == {"momentum_buffer"}  # SGD with momentum, not AdamW (exp_avg, exp_avg_sq)
    assert state["param_groups"][0]["momentum"] == 0.9


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_each_scheduler_shapes_the_learning_rate(env, scheduler):
    peak, steps, warmup = 1e-3, 8, 2
    status = finetune(env, scheduler=scheduler, learning_rate=peak, max_steps=steps, warmup_steps=warmup,
                      eval_steps=steps)
    assert status["status"] == "completed", status["error"]
    rates = series(env["studio"], status["run_id"], "learning_rate")
    assert sorted(rates) == list(range(1, steps + 1))
    # The rate logged at step s is the one update s used: the schedule after s - 1 steps.
    def expected(s):
        if scheduler == "constant":
            return peak
        if s < warmup:
            return peak * s / warmup
        if scheduler == "constant_with_warmup":
            return peak
        progress = (s - warmup) / (steps - warmup)
        return peak * (1 - progress) if scheduler == "linear" else peak * 0.5 * (1 + math.cos(math.pi * progress))
    for step, rate in rates.items():
        assert rate == pytest.approx(expected(step - 1), rel=1e-4, abs=1e-12), (scheduler, step, rates)


def test_num_epochs_mode_trains_that_many_passes(env, tmp_path):
    studio = env["studio"]
    rows = authors("train")[:40]  # 40 rows in batches of 8: 5 steps per epoch
    dataset = studio.upload_dataset("forty", write_csv(tmp_path / "forty.csv", ["text", "label"], rows),
                                    "text", "label", validation_file=DATA / "authors_dev.csv")
    status = finetune({**env, "dataset": dataset["dataset_id"]}, max_steps=0, num_epochs=2, eval_steps=5)
    assert status["status"] == "completed", status["error"]
    assert status["step"] == 10 and status["info"]["num_epochs"] == 2
    assert "2 epochs (10 steps)" in studio.log_tail(status["run_id"], 50)


def test_sentence_pairs_train_and_classify(env, tmp_path):
    studio = env["studio"]
    texts = authors("train")

    def pairs(rows):  # "same author?": each text with the next one, and with one from another author
        out = []
        for (a, la), (b, lb) in zip(rows, rows[1:] + rows[:1]):
            out.append((a, b, "same" if la == lb else "different"))
        return out

    by_label = {}
    for text, label in texts:
        by_label.setdefault(label, []).append((text, label))
    mixed = [row for group in zip(*by_label.values()) for row in group]  # Austen, Shakespeare, Whitman, ...
    rows = pairs(sorted(texts, key=lambda r: r[1])[:60]) + pairs(mixed[:60])
    path = write_csv(tmp_path / "pairs.csv", ["text", "text_pair", "label"], rows)
    dataset = studio.upload_dataset("pairs", path, "text", "label", text_pair_column="text_pair")
    assert dataset["text_pair"] is True
    status = finetune({**env, "dataset": dataset["dataset_id"]})
    assert status["status"] == "completed", status["error"]
    assert sorted(status["info"]["labels"]) == ["different", "same"]
    answer = studio.classify(status["run_id"], rows[0][0], rows[0][1])
    alone = studio.classify(status["run_id"], rows[0][0])
    assert set(answer["scores"]) == {"different", "same"}
    assert answer["scores"] != alone["scores"]  # the second text reaches the model


def test_finetuning_resume_continues_from_the_stop_checkpoint(env):
    studio = env["studio"]
    run_id = studio.start_finetuning({**QUICK, "dataset_id": env["dataset"], "base_model": env["base"],
                                      "max_steps": 5000, "eval_steps": 1000})["run_id"]
    wait_for(lambda: studio.run_status(run_id)["step"] >= 3, timeout=300, message="a few steps")
    studio.stop_run(run_id)
    stopped = ended(studio, run_id)
    assert stopped["status"] == "stopped", stopped["error"]
    resumed = studio.resume_run(run_id, {"max_steps": stopped["step"] + 4})
    assert resumed["from_checkpoint"] == f"checkpoint-{stopped['step']}"
    status = ended(studio, run_id)
    assert status["status"] == "completed", status["error"]
    assert status["step"] == stopped["step"] + 4
    train_steps = sorted(series(studio, run_id, "train_loss"))
    assert train_steps == list(range(1, stopped["step"] + 5))  # one point per step across the resume
    assert f"resuming from checkpoint-{stopped['step']}" in studio.log_tail(run_id, 200)
    assert status["test_metrics"]["accuracy"] is not None and (studio.workspace.run_dir(run_id) / "model").is_dir()


# --- pretraining settings ----------------------------------------------------------------------------------------


def test_gradient_accumulation_records_the_effective_batch(env):
    studio = env["studio"]
    run_id = studio.start_pretraining({**BASE_RUN, "corpus_id": env["corpus"], "max_steps": 3, "batch_size": 4,
                                       "gradient_accumulation_steps": 3, "eval_steps": 3, "logging_steps": 1,
                                       "max_seq_length": 32})["run_id"]
    status = ended(studio, run_id)
    assert status["status"] == "completed", status["error"]
    assert status["step"] == 3
    info = status["info"]
    assert info["effective_batch_size"] == 12  # 4 per step x 3 micro-batches
    assert info["trained_tokens"] == 3 * 12 * 32
    assert "effective batch 12" in studio.log_tail(run_id, 50)


@pytest.mark.parametrize("preset", ["small", "medium"])
def test_small_and_medium_presets_train_one_step(env, preset):
    studio = env["studio"]
    run_id = studio.start_pretraining({**BASE_RUN, "corpus_id": env["corpus"], "model_size": preset,
                                       "max_steps": 1, "batch_size": 2, "max_seq_length": 32, "eval_steps": 1,
                                       "warmup_steps": 0})["run_id"]
    status = ended(studio, run_id, timeout=600)
    assert status["status"] == "completed", status["error"]
    assert status["step"] == 1
    saved = json.loads((studio.workspace.run_dir(run_id) / "model" / "config.json").read_text())
    layers, hidden = MODEL_PRESETS[preset]
    assert (saved["num_hidden_layers"], saved["hidden_size"]) == (layers, hidden)
    assert all(math.isfinite(v) for v in series(studio, run_id, "eval_loss").values())


def test_report_to_tensorboard_writes_event_files(env):
    import importlib.util

    from pretrain_studio.studio import StudioError

    studio = env["studio"]
    config = {**BASE_RUN, "corpus_id": env["corpus"], "max_steps": 2, "eval_steps": 2, "logging_steps": 1,
              "report_to": "tensorboard"}
    installed = importlib.util.find_spec("tensorboard") is not None
    if not installed:  # what a user without it sees: the launch is refused, saying what to install; nothing queued
        before = len(studio.list_runs())
        with pytest.raises(StudioError, match=r"report_to: tensorboard is not installed \(pip install tensorboard\)"):
            studio.start_pretraining(config)
        assert len(studio.list_runs()) == before
    require("tensorboard", installed, "pip install tensorboard")
    run_id = studio.start_pretraining(config)["run_id"]
    status = ended(studio, run_id)
    assert status["status"] == "completed", status["error"]
    events = list(studio.workspace.run_dir(run_id).rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


# --- a registry written by an older version ----------------------------------------------------------------------

# The runs table of earlier versions, as they created it: v2 (fine-tuning added dataset_id) lacked tags, notes
# and the queue order; v3 (experiment management) had those. Current columns are not listed here on purpose:
# the test compares the upgraded table with a fresh one, whatever columns the current version has.
OLD_RUNS_TABLES = {
    "v2": """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    config_json TEXT NOT NULL, corpus_id TEXT, dataset_id TEXT, parent_id TEXT, device TEXT, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, step INTEGER NOT NULL DEFAULT 0, max_steps INTEGER NOT NULL DEFAULT 0,
    error TEXT, stop_requested INTEGER NOT NULL DEFAULT 0, info_json TEXT NOT NULL DEFAULT '{}');""",
    "v3": """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    config_json TEXT NOT NULL, corpus_id TEXT, dataset_id TEXT, parent_id TEXT, device TEXT, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, step INTEGER NOT NULL DEFAULT 0, max_steps INTEGER NOT NULL DEFAULT 0,
    error TEXT, stop_requested INTEGER NOT NULL DEFAULT 0, info_json TEXT NOT NULL DEFAULT '{}',
    tags_json TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '', queue_pos REAL);""",
}
OLD_TABLES = """
CREATE TABLE corpora (id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, created_at REAL NOT NULL,
    documents INTEGER NOT NULL, characters INTEGER NOT NULL, words INTEGER NOT NULL, stats_json TEXT NOT NULL);
CREATE TABLE datasets (id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, created_at REAL NOT NULL,
    rows INTEGER NOT NULL, labels_json TEXT NOT NULL, stats_json TEXT NOT NULL);
CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, time REAL NOT NULL);
CREATE INDEX metrics_by_run ON metrics(run_id, id);
CREATE INDEX runs_by_status ON runs(status, created_at);
"""


def write_old_registry(path, version):
    now = time.time()
    config = {"kind": "pretrain", "corpus_id": "corpus-old", "model_size": "tiny", "max_steps": 20,
              "learning_rate": 2e-3}
    with sqlite3.connect(path) as db:
        db.executescript(OLD_RUNS_TABLES[version] + OLD_TABLES)
        db.execute("INSERT INTO corpora VALUES ('corpus-old', 'old corpus', '/nowhere', ?, 3, 30, 6, ?)",
                   (now, json.dumps({"documents": 3, "characters": 30, "words": 6})))
        old_runs = (("run-old-done", "completed", now - 30), ("run-old-queued-a", "queued", now - 20),
                    ("run-old-queued-b", "queued", now - 10))
        for run_id, status, created in old_runs:
            db.execute("INSERT INTO runs (id, name, kind, status, config_json, corpus_id, device, created_at, step,"
                       " max_steps, info_json) VALUES (?, ?, 'pretrain', ?, ?, 'corpus-old', 'cpu', ?, ?, 20, ?)",
                       (run_id, f"name of {run_id}", status, json.dumps(config), created,
                        20 if status == "completed" else 0, json.dumps({"parameters": 1234})))
        db.executemany("INSERT INTO metrics (run_id, step, name, value, time) VALUES ('run-old-done', ?, ?, ?, ?)",
                       [(10, "eval_loss", 6.5, now), (20, "eval_loss", 5.25, now), (20, "train_loss", 5.5, now)])


@pytest.mark.parametrize("version", sorted(OLD_RUNS_TABLES))
def test_a_registry_of_an_older_version_is_upgraded_in_place(tmp_path, version):
    root = tmp_path / "workspace"
    root.mkdir()
    write_old_registry(root / "studio.db", version)
    studio = Studio(root, start_worker=False)  # nothing trains: the old queued runs' corpus is not on disk
    try:
        fresh = Registry(tmp_path / "fresh.db")
        with sqlite3.connect(root / "studio.db") as upgraded, sqlite3.connect(tmp_path / "fresh.db") as new:
            def columns(db):
                return {r[1] for r in db.execute("PRAGMA table_info(runs)")}
            assert columns(new) <= columns(upgraded)  # every column this version uses is there now
        assert fresh.list_runs() == []
        # The old data is all there, and reads as it did.
        [done] = [r for r in studio.list_runs() if r["run_id"] == "run-old-done"]
        assert done["name"] == "name of run-old-done" and done["status"] == "completed" and done["data"] == "old corpus"
        assert done["best_metric"] == {"name": "eval_loss", "value": 5.25}
        assert [(m["step"], m["value"]) for m in studio.run_metrics("run-old-done") if m["name"] == "eval_loss"] == \
            [(10, 6.5), (20, 5.25)]
        page = studio.get_run("run-old-done")
        assert page["config"]["learning_rate"] == 2e-3 and page["info"]["parameters"] == 1234
        assert page["tags"] == [] and page["notes"] == ""
        # The newer features work on the old rows.
        studio.tag_run("run-old-done", "kept, old", notes="from an older version")
        assert [r["run_id"] for r in studio.list_runs({"tag": "old"})] == ["run-old-done"]
        assert studio.get_run("run-old-done")["notes"] == "from an older version"
        assert [r["run_id"] for r in studio.queue()] == ["run-old-queued-a", "run-old-queued-b"]
        assert [r["run_id"] for r in studio.move_in_queue("run-old-queued-b", 0)] == ["run-old-queued-b",
                                                                                       "run-old-queued-a"]
        studio.delete_run("run-old-done")
        assert studio.registry.metrics_since("run-old-done") == []
    finally:
        studio.close()
    # Opening it again changes nothing more (the upgrade is done once).
    again = Registry(root / "studio.db")
    assert [r["id"] for r in again.queue()] == ["run-old-queued-b", "run-old-queued-a"]


# --- Cancel that a launch does not obey ------------------------------------------------------------------------

STUBBORN = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a launch stuck so badly it ignores SIGTERM too\n"
            "print('stuck', flush=True)\n"
            "time.sleep(600)\n")


def test_a_cancel_not_obeyed_within_the_grace_period_ends_the_launch_by_force(env, monkeypatch):
    import psutil

    from pretrain_studio.training import launcher, supervision

    monkeypatch.setattr(supervision, "CANCEL_GRACE", 1.0)
    monkeypatch.setattr(supervision, "KILL_GRACE", 1.0)
    monkeypatch.setattr(launcher, "torchrun_command", lambda *a, **k: [sys.executable, "-c", STUBBORN])
    studio = env["studio"]
    run_id = studio.start_pretraining({**BASE_RUN, "corpus_id": env["corpus"], "devices": 2, "device": "cpu",
                                       "max_steps": 1000})["run_id"]
    pid = wait_for(lambda: studio.run_status(run_id)["info"].get("launcher_pid"), timeout=120,
                   message="the launch to start")
    wait_for(lambda: "stuck" in (studio.workspace.run_dir(run_id) / launcher.LAUNCH_LOG).read_text(), timeout=60,
             message="the launch to be running")
    studio.cancel_run(run_id)
    status = ended(studio, run_id, timeout=120)
    assert status["status"] == "cancelled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    log = studio.log_tail(run_id, 50)
    assert "cancel not obeyed within 1 s: ending the training process (SIGTERM)" in log
    assert "did not end within 1 s of SIGTERM: killing it" in log
    assert status["info"]["launcher_exit_code"] == -9

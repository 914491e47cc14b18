"""Faults during training: the run ends honestly and the app keeps working.

Every fault is provoked for real, with the real Trainer, a tiny model, the real registry and, where it matters,
the real app in a subprocess:
- a loss that diverges (a learning rate of 1e6) ends the run as `failed` with "non-finite loss at step N", and
  neither the curves nor a checkpoint get anything from the diverged model (pretraining and fine-tuning);
- the worker then trains the next queued run, and the app answers API calls throughout;
- memory that runs out in the model's forward (a batch that cannot be allocated under a lowered RLIMIT_AS, in a
  CLI subprocess) gives a plain message that says to lower batch_size or max_seq_length;
- a checkpoint that cannot be written (the file-size limit RLIMIT_FSIZE lowered in a CLI subprocess once its first
  checkpoint is complete, so the next one fails with EFBIG as on a full disk) fails the run with a message saying
  so, and leaves the previous checkpoint and the registry intact: the run resumes from it;
- launches at the same moment queue, and never train two runs on one device;
- the app killed (SIGKILL) while it writes a checkpoint resumes, after a restart, from the last complete
  checkpoint: the half-written one, and a checkpoint folder put there by hand, are skipped.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO, TINY_RUN, AppServer, wait_for, write_wikitext_slice
from gradio_client import Client, handle_file
from safetensors.torch import load_file
from tiny_models import save_tiny_mlm

from pretrain_studio.registry import Registry
from pretrain_studio.run_states import RunStatus
from pretrain_studio.studio import Studio
from pretrain_studio.training.checkpoints import MARKER, checkpoint_problem

pytestmark = pytest.mark.e2e

DIVERGING = {"learning_rate": 1e6, "warmup_steps": 0}  # AdamW steps of 1e6: the loss is NaN within a few steps
# Few held-out blocks and no periodic evaluation: these runs are about how they end, not about their curves.
QUICK = {**TINY_RUN, "eval_fraction": 0.02, "eval_steps": 1000, "logging_steps": 1}
SHORT = {**QUICK, "max_steps": 2, "save_steps": 2}


def ended(status: dict) -> bool:
    return not RunStatus(status["status"]).active


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])


def assert_nothing_recorded_from_the_diverged_model(metrics: list[dict], error: str, checkpoints: Path) -> None:
    """No metric row from the step the loss went non-finite on, no zero or NaN loss, no checkpoint of NaN weights."""
    match = re.search(r"non-finite loss at step (\d+)", error)
    assert match, error
    step = int(match.group(1))
    assert [m for m in metrics if m["step"] >= step] == []
    losses = [m["value"] for m in metrics if m["name"] == "train_loss"]
    assert all(math.isfinite(v) and v != 0.0 for v in losses), losses  # the Trainer's filter would log NaN as 0.0
    for checkpoint in checkpoints.glob("checkpoint-*"):
        weights = load_file(str(checkpoint / "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights.values()), f"{checkpoint.name} holds a diverged model"
    tail = error.split("--- last log lines ---\n")[1]
    assert "training started at step 0" in tail and "Traceback" not in tail  # the run's own lines, not a traceback


# --- in the app: divergence, the queue going on, launches at the same moment, a kill mid-save ---------------


@pytest.fixture(scope="module")
def app(tmp_path_factory, wikitext_slice):
    workspace = tmp_path_factory.mktemp("faults") / "workspace"
    state = SimpleNamespace(workspace=workspace, server=AppServer(workspace).start())
    state.client = Client(state.server.url, verbose=False)
    state.registry = Registry(workspace / "studio.db")
    state.corpus_id = state.client.predict([handle_file(str(wikitext_slice))], "wiki",
                                           api_name="/upload_corpus")["corpus_id"]
    yield state
    state.server.stop()  # the kill test may have replaced the server with a restarted one


def test_a_diverging_run_fails_honestly_and_the_next_queued_run_completes(app):
    client = app.client
    # The loss is logged every 5 steps, checkpoints are written every 2: a NaN must still never reach a checkpoint.
    diverging = client.predict({**QUICK, **DIVERGING, "corpus_id": app.corpus_id, "max_steps": 30,
                                "logging_steps": 5, "save_steps": 2}, api_name="/start_pretraining")["run_id"]
    following = client.predict({**SHORT, "corpus_id": app.corpus_id},
                               api_name="/start_pretraining")["run_id"]

    def both_ended():
        listed = {r["run_id"] for r in client.predict(None, api_name="/list_runs")}  # the app answers meanwhile
        assert {diverging, following} <= listed
        statuses = [client.predict(run_id, api_name="/run_status") for run_id in (diverging, following)]
        return all(ended(s) for s in statuses) and statuses

    failed, completed = wait_for(both_ended, timeout=600, interval=0.5, message="both runs to end")
    assert failed["status"] == "failed"
    assert "the training diverged" in failed["error"] and "Lower learning_rate (now 1e+06)" in failed["error"]
    metrics = client.predict(diverging, 0, api_name="/run_metrics")
    assert_nothing_recorded_from_the_diverged_model(metrics, failed["error"],
                                                    app.workspace / "runs" / diverging / "checkpoints")
    assert "NonFiniteLossError" in client.predict(diverging, api_name="/get_run")["log_tail"]  # the details: in the log
    assert completed["status"] == "completed", completed["error"]
    assert completed["step"] == SHORT["max_steps"]


def test_launches_at_the_same_moment_queue_and_never_train_two_runs_on_one_device(app):
    launches = 2
    barrier, launched = threading.Barrier(launches), []

    def launch(index: int) -> None:
        client = Client(app.server.url, verbose=False)  # one client per user, all pressing Launch at once
        barrier.wait()
        launched.append(client.predict({**SHORT, "corpus_id": app.corpus_id, "name": f"at once {index}"},
                                       api_name="/start_pretraining")["run_id"])

    threads = [threading.Thread(target=launch, args=(i,)) for i in range(launches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(launched) == launches
    devices = {app.registry.get_run(run_id)["device"] for run_id in launched}
    assert len(devices) == 1  # "auto": every run on the same device
    training_at_once = []

    def all_ended():
        runs = app.registry.list_runs()
        training_at_once.append(sum(r["status"] == "running" and r["device"] in devices for r in runs))
        mine = [r for r in runs if r["id"] in launched]
        return all(ended(r) for r in mine) and mine

    runs = wait_for(all_ended, timeout=600, interval=0.05, message="the simultaneous launches to end")
    assert max(training_at_once) == 1
    assert [r["status"] for r in runs] == ["completed"] * launches, [r["error"] for r in runs]
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans  # one after another


def test_killed_while_writing_a_checkpoint_resumes_from_the_last_complete_one(app):
    run_id = app.client.predict({**QUICK, "corpus_id": app.corpus_id, "max_steps": 100_000, "save_steps": 3},
                                api_name="/start_pretraining")["run_id"]
    checkpoints = app.workspace / "runs" / run_id / "checkpoints"
    process = app.server.process
    # The checkpoint is written by the run's own training process (training/child.py), a child of the app.
    trainer = wait_for(lambda: app.registry.get_run(run_id)["info"].get("process_pid"), timeout=120,
                       message="the training process")
    deadline = time.time() + 300
    half_written = None
    while half_written is None:
        assert time.time() < deadline, "never caught the run in the middle of writing a checkpoint"
        found = {step_of(c): c for c in checkpoints.glob("checkpoint-*")}
        complete = [s for s, c in found.items() if (c / MARKER).exists()]
        newest = max(found, default=None)
        if complete and newest is not None and newest > max(complete) and not (found[newest] / MARKER).exists():
            os.kill(trainer, signal.SIGSTOP)  # freeze it, then look again: is that save still unfinished?
            if found[newest].is_dir() and not (found[newest] / MARKER).exists():
                half_written = found[newest]
                process.kill()  # SIGKILL the app, then its frozen trainer, mid-save: exactly like a crash
                process.wait(timeout=30)
                os.kill(trainer, signal.SIGKILL)
            else:
                os.kill(trainer, signal.SIGCONT)
        time.sleep(0.001)
    last_complete = max(step_of(c) for c in checkpoints.glob("checkpoint-*") if (c / MARKER).exists())
    assert last_complete < step_of(half_written)
    # A checkpoint the app did not write: a perfect copy of a real one, dropped in by hand, without the marker.
    by_hand = checkpoints / "checkpoint-9000"
    shutil.copytree(checkpoints / f"checkpoint-{last_complete}", by_hand)
    (by_hand / MARKER).unlink()
    assert app.registry.get_run(run_id)["status"] == "running"  # what the dead process left behind

    app.server = AppServer(app.workspace).start()
    client = Client(app.server.url, verbose=False)
    assert client.predict(run_id, api_name="/run_status")["status"] == "interrupted"
    resumed = client.predict(run_id, {"max_steps": last_complete + 4}, api_name="/resume_run")
    assert resumed["from_checkpoint"] == f"checkpoint-{last_complete}"
    final = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status")) and ended(s) and s,
                     timeout=600, message="the resumed run")
    assert final["status"] == "completed", final["error"]
    assert final["step"] == last_complete + 4
    log = client.predict(run_id, api_name="/get_run")["log_tail"] + (app.workspace / "runs" / run_id /
                                                                      "train.log").read_text()
    assert "skipping checkpoint-9000: no completion marker" in log
    assert f"skipping {half_written.name}: no completion marker" in log
    assert f"resuming from checkpoint-{last_complete}" in log


# --- fine-tuning diverges too ---------------------------------------------------------------------------


def test_a_diverging_finetuning_run_fails_without_a_fake_point(tmp_path, wikitext_slice):
    studio = Studio(tmp_path / "workspace")  # a new workspace registers the sample labelled dataset
    try:
        base = save_tiny_mlm(tmp_path / "base", wikitext_slice)
        dataset = studio.list_datasets()[0]["dataset_id"]
        run_id = studio.start_finetuning({"dataset_id": dataset, "base_model": str(base), "method": "full",
                                          "max_steps": 20, "eval_steps": 2, "logging_steps": 5, "batch_size": 16,
                                          "max_seq_length": 48, **DIVERGING})["run_id"]
        status = wait_for(lambda: (s := studio.run_status(run_id)) and ended(s) and s, timeout=300,
                          message="the fine-tuning run")
    finally:
        studio.close()
    assert status["status"] == "failed"
    assert "the training diverged" in status["error"]
    assert_nothing_recorded_from_the_diverged_model(studio.run_metrics(run_id), status["error"],
                                                    studio.workspace.run_dir(run_id) / "checkpoints")


# --- out of memory and a full disk, each in a CLI subprocess with a lowered resource limit ----------------

# Heavy imports first, then the address-space limit: what is left is too little for a batch of 4096 blocks.
OUT_OF_MEMORY = """
import re, resource, sys
from pretrain_studio import cli
import pretrain_studio.studio, pretrain_studio.training.pretrain
vm = int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(cli.main(sys.argv[2:]))
"""

# Once the run's first checkpoint is complete, no file may grow past half its weights: the next checkpoint fails
# to be written (EFBIG, as a full disk gives ENOSPC) while the log and the registry stay small enough to write.
DISK_FULL = """
import resource, signal, sys, threading, time
from pathlib import Path
from pretrain_studio import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
workspace = Path(sys.argv[1])

def fill_the_disk_after_the_first_checkpoint():
    while not (markers := list(workspace.glob("runs/*/checkpoints/checkpoint-*/" + sys.argv[2]))):
        time.sleep(0.005)
    limit = (markers[0].parent / "model.safetensors").stat().st_size // 2
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    print(f"files may not grow past {limit} bytes from now on", flush=True)

threading.Thread(target=fill_the_disk_after_the_first_checkpoint, daemon=True).start()
sys.exit(cli.main(sys.argv[3:]))
"""


def run_cli(script: str, *args: str) -> subprocess.CompletedProcess:
    # Fixed thread counts and malloc arenas: the address space the run needs does not depend on the machine's cores.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def only_run(workspace: Path) -> dict:
    [run] = Registry(workspace / "studio.db").list_runs()
    return run


def test_out_of_memory_in_the_forward_pass_says_to_lower_the_batch(tmp_path):
    # A batch of 4096 blocks of 128 tokens needs more than 1 GB, if there are that many: Moby Dick's 150 KB eight
    # times over give about 2,200 (repeated documents are kept, so the run sees them all).
    corpus = tmp_path / "book.txt"
    corpus.write_bytes(write_wikitext_slice(tmp_path / "once.txt").read_bytes() * 8)
    workspace = tmp_path / "workspace"
    # Eight copies of the text (for enough blocks), kept: the corpus is not de-duplicated (--no-dedupe).
    done = run_cli(OUT_OF_MEMORY, 1_000_000_000, "pretrain", "--workspace", workspace, "--corpus", corpus, "--no-dedupe",
                   "--model-size", "tiny", "--vocab-size", 1500, "--batch-size", 4096, "--max-seq-length", 128,
                   "--eval-fraction", 0.02, "--max-steps", 2)
    assert done.returncode == 1, done.stdout + done.stderr
    run = only_run(workspace)
    assert run["status"] == "failed"
    assert run["error"].startswith("out of memory")
    assert "Lower batch_size (now 4096) or max_seq_length (now 128)" in run["error"]
    assert "gradient_accumulation_steps" in run["error"]
    assert run["error"].split("\n--- last log lines")[0] in done.stderr  # the CLI prints the same message
    log = (workspace / "runs" / run["id"] / "train.log").read_text()
    # Raised for real, by the allocator, inside the model's forward pass of a training step.
    assert "training started at step 0" in log and "training_step" in log and "in forward" in log
    assert re.search(r"can't allocate memory|out of memory", log, re.IGNORECASE)


def test_a_checkpoint_that_cannot_be_written_fails_the_run_and_keeps_the_previous_one(tmp_path, wikitext_slice):
    workspace = tmp_path / "workspace"
    done = run_cli(DISK_FULL, workspace, MARKER, "pretrain", "--workspace", workspace, "--corpus", wikitext_slice,
                   "--model-size", "mini", "--vocab-size", 1500, "--batch-size", 8, "--max-seq-length", 64,
                   "--max-steps", 9, "--save-steps", 3, "--logging-steps", 1, "--eval-steps", 100)
    assert done.returncode == 1, done.stdout + done.stderr
    run = only_run(workspace)
    assert run["status"] == "failed"
    assert run["error"].startswith("could not write checkpoint-6 (its unfinished folder was removed): "
                                   "a file grew past the allowed size"), run["error"]
    assert "Free some space, then resume the run: it continues from checkpoint-3" in run["error"]
    checkpoints = workspace / "runs" / run["id"] / "checkpoints"
    assert sorted(c.name for c in checkpoints.glob("checkpoint-*")) == ["checkpoint-3"]
    assert checkpoint_problem(checkpoints / "checkpoint-3") is None
    with sqlite3.connect(workspace / "studio.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    metrics = Registry(workspace / "studio.db").metrics_since(run["id"])
    assert [m["step"] for m in metrics if m["name"] == "train_loss"] == [1, 2, 3, 4, 5, 6]  # all logged is kept

    studio = Studio(workspace)  # space is free again: resume in the app's worker
    try:
        assert studio.resume_run(run["id"], {"max_steps": 7})["from_checkpoint"] == "checkpoint-3"
        status = wait_for(lambda: (s := studio.run_status(run["id"])) and ended(s) and s, timeout=300,
                          message="the resumed run")
    finally:
        studio.close()
    assert status["status"] == "completed", status["error"]
    assert status["step"] == 7

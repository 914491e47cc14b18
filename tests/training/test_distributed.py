"""Several devices through torchrun, on the CPU: 2 processes with the gloo backend, launched by the real
job runner (training/launcher.py) as a supervised child process.

A pretraining run and a LoRA fine-tuning run complete with every metric in the registry once (rank 0 alone
writes) and the ranks really synchronised (DDP: the same gradient norm on both ranks at every step); Stop
ends both processes after a checkpoint; a rank killed mid-run fails the run with a message that names it.
"""

import json
import os
import re
import signal
from pathlib import Path

import psutil
import pytest
from conftest import AUTHORS, TINY_RUN, wait_for

from pretrain_studio.studio import Studio

TWO_PROCESSES = {"devices": 2, "device": "cpu"}
LONG = {"max_steps": 100_000, "eval_steps": 100_000, "save_steps": 100_000, "logging_steps": 1}


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


def launch_over(studio, run_id):
    """The run has ended, torchrun and both ranks have exited, and the launcher has recorded the outcome (the
    status may change once more when it reads why a rank failed: rank 0 may record its own error first)."""
    status = finished(studio, run_id)
    if status and "launcher_exit_code" not in status["info"]:
        return None
    pids = [r["pid"] for r in rank_records(studio, run_id)] + [status["info"].get("launcher_pid")] if status else []
    return status if status and not any(pid and psutil.pid_exists(pid) and not zombie(pid) for pid in pids) else None


def zombie(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_long_run(studio, corpus_id) -> str:
    """A 2-process run that would go on for 100,000 steps, once it has trained a few."""
    run_id = studio.start_pretraining({**TINY_RUN, **TWO_PROCESSES, **LONG, "corpus_id": corpus_id})["run_id"]
    wait_for(lambda: studio.run_status(run_id)["step"] >= 3, timeout=300, message="a few steps")
    return run_id


def rank_records(studio, run_id):
    folder = studio.workspace.run_dir(run_id) / "ranks"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("rank-*.json"))]


def grad_norms(log: Path) -> list[tuple[str, str]]:
    return re.findall(r"step (\d+): train_loss=\S+ grad_norm=([\d.e+-]+)", log.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, wikitext_slice):
    root = tmp_path_factory.mktemp("distributed")
    studio = Studio(root / "workspace")
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    yield studio, corpus["corpus_id"], root
    studio.close()


@pytest.fixture(scope="module")
def pretrained(setup):
    studio, corpus_id, _ = setup
    run = studio.start_pretraining({**TINY_RUN, **TWO_PROCESSES, "corpus_id": corpus_id})
    return wait_for(lambda: launch_over(studio, run["run_id"]), timeout=600, message="the 2-process pretraining")


def test_two_process_pretraining_completes_with_each_metric_once(setup, pretrained):
    studio, _, _ = setup
    run_id = pretrained["run_id"]
    assert pretrained["status"] == "completed", pretrained["error"]
    assert pretrained["step"] == TINY_RUN["max_steps"]
    assert pretrained["info"]["world_size"] == 2
    assert pretrained["info"]["effective_batch_size"] == TINY_RUN["batch_size"] * 2
    ranks = rank_records(studio, run_id)
    assert [r["rank"] for r in ranks] == [0, 1] and len({r["pid"] for r in ranks}) == 2

    rows = studio.run_metrics(run_id)
    keys = [(r["step"], r["name"]) for r in rows]
    assert len(keys) == len(set(keys)), "a metric was recorded more than once"
    eval_loss = [r["value"] for r in rows if r["name"] == "eval_loss"]
    assert eval_loss[-1] < eval_loss[0] - 0.5

    # DDP really synchronised the ranks: the same gradient norm on both, at every logged step. (Each rank
    # training alone, as when the model is not wrapped in DistributedDataParallel, gives different norms.)
    run_dir = studio.workspace.run_dir(run_id)
    on_rank_0, on_rank_1 = grad_norms(run_dir / "train.log"), grad_norms(run_dir / "ranks" / "rank-1.log")
    assert len(on_rank_0) >= 4 and on_rank_0 == on_rank_1

    # The saved model is the same standard folder as a single-device run's.
    from transformers import pipeline

    answers = pipeline("fill-mask", model=str(run_dir / "model"))("the game was released in [MASK] .", top_k=3)
    assert len(answers) == 3
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (run_dir / "model").iterdir()}


def test_two_process_lora_finetuning_completes(setup, pretrained, tmp_path):
    studio, _, _ = setup
    dataset = studio.upload_dataset("authors", AUTHORS["train"], validation_file=AUTHORS["dev"])  # 240 / 60 rows
    run = studio.start_finetuning({**TWO_PROCESSES, "dataset_id": dataset["dataset_id"],
                                   "base_model": pretrained["run_id"], "method": "lora", "lora_r": 4,
                                   "max_steps": 8, "eval_steps": 4, "logging_steps": 2, "batch_size": 16,
                                   "max_seq_length": 48, "seed": 3})
    status = wait_for(lambda: launch_over(studio, run["run_id"]), timeout=600, message="the 2-process LoRA run")
    assert status["status"] == "completed", status["error"]
    assert status["info"]["effective_batch_size"] == 32 and status["info"]["world_size"] == 2
    rows = studio.run_metrics(run["run_id"])
    keys = [(r["step"], r["name"]) for r in rows]
    assert len(keys) == len(set(keys)), "a metric was recorded more than once"
    assert {"eval_f1", "validation_accuracy"} <= {r["name"] for r in rows}
    assert status["test_metrics"] is not None and status["baselines"]["majority"] is not None
    # A LoRA run's model folder: the adapter, as for a single-device run.
    assert (studio.workspace.run_dir(run["run_id"]) / "model" / "adapter_config.json").exists()
    result = studio.classify(run["run_id"], "I celebrate myself, and sing myself.")
    assert result["label"] in result["scores"]


def test_stop_ends_every_process_after_a_checkpoint(setup):
    studio, corpus_id, _ = setup
    run_id = start_long_run(studio, corpus_id)
    pids = [r["pid"] for r in rank_records(studio, run_id)]
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    studio.stop_run(run_id)
    status = wait_for(lambda: launch_over(studio, run_id), timeout=300, message="both ranks to stop")
    assert status["status"] == "stopped", status["error"]
    assert not any(psutil.pid_exists(p) and not zombie(p) for p in pids)
    checkpoint = studio.workspace.run_dir(run_id) / "checkpoints" / f"checkpoint-{status['step']}"
    assert (checkpoint / "studio_checkpoint.json").exists()  # complete, so the run can resume from it


def test_cancel_ends_every_process_and_keeps_nothing(setup):
    studio, corpus_id, _ = setup
    run_id = start_long_run(studio, corpus_id)
    pids = [r["pid"] for r in rank_records(studio, run_id)]
    studio.cancel_run(run_id)
    status = wait_for(lambda: launch_over(studio, run_id), timeout=300, message="both ranks to end")
    assert status["status"] == "cancelled", status["error"]
    assert not any(psutil.pid_exists(p) and not zombie(p) for p in pids)
    assert not (studio.workspace.run_dir(run_id) / "checkpoints").exists()


def test_a_killed_rank_fails_the_run_naming_it(setup):
    studio, corpus_id, _ = setup
    run_id = start_long_run(studio, corpus_id)
    rank_1 = next(r for r in rank_records(studio, run_id) if r["rank"] == 1)
    os.kill(rank_1["pid"], signal.SIGKILL)
    status = wait_for(lambda: launch_over(studio, run_id), timeout=300, message="the launch to end")
    assert status["status"] == "failed"
    assert f"rank 1 (pid {rank_1['pid']}) was killed by SIGKILL" in status["error"], status["error"]
    # The worker is free again: the next run on this device trains.
    after = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 5, "device": "cpu"})
    assert wait_for(lambda: finished(studio, after["run_id"]), timeout=300)["status"] == "completed"


# --- the CLI: several machines, and the printed command -------------------------------------------------

def cli(workspace, *args, **popen):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "pretrain_studio", *args, "--workspace", str(workspace)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_two_machines_meet_at_the_rendezvous_and_record_one_run(setup, tmp_path):
    """Two "machines" on loopback, one process each, sharing the workspace (as on a cluster's shared disk):
    machine 0 registers and records the run, machine 1 only lends its process."""
    from conftest import free_port

    studio, corpus_id, _ = setup
    config = tmp_path / "two_nodes.json"
    config.write_text(json.dumps({"kind": "pretrain", **TINY_RUN, "corpus_id": corpus_id, "max_steps": 10,
                                  "device": "cpu", "devices": 1, "nodes": 2,
                                  "rdzv_endpoint": f"127.0.0.1:{free_port()}"}))
    before = {r["run_id"] for r in studio.list_runs({})}
    node_0 = cli(studio.workspace.root, "run", str(config), "--node-rank", "0")
    node_1 = cli(studio.workspace.root, "run", str(config), "--node-rank", "1")
    out_1, out_0 = node_1.communicate(timeout=600)[0], node_0.communicate(timeout=600)[0]
    assert node_0.returncode == 0, out_0[-3000:]
    assert node_1.returncode == 0, out_1[-3000:]
    assert "machine 1 of 2: 1 process(es) joining 127.0.0.1:" in out_1
    new = [r for r in studio.list_runs({}) if r["run_id"] not in before]
    assert len(new) == 1, new  # machine 1 registered nothing
    status = studio.run_status(new[0]["run_id"])
    assert status["status"] == "completed" and status["step"] == 10
    assert status["info"]["world_size"] == 2 and status["info"]["effective_batch_size"] == 2 * TINY_RUN["batch_size"]
    keys = [(r["step"], r["name"]) for r in studio.run_metrics(status["run_id"])]
    assert keys and len(keys) == len(set(keys))


def test_print_torchrun_and_bad_launch_settings(setup, tmp_path):
    studio, corpus_id, _ = setup
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"kind": "pretrain", "corpus_id": corpus_id, "devices": 4, "nodes": 2,
                                  "rdzv_endpoint": "10.0.0.1:29500"}))
    printed = cli(studio.workspace.root, "run", str(config), "--print-torchrun", "--node-rank", "1")
    out = printed.communicate(timeout=120)[0]
    assert printed.returncode == 0, out
    assert out.strip().splitlines()[-1] == (
        "torchrun --nproc-per-node=4 --max-restarts=0 --nnodes=2 --node-rank=1 --master-addr=10.0.0.1 "
        f"--master-port=29500 -m pretrain_studio.training.rank_worker --workspace {studio.workspace.root.resolve()} "
        f"--config {config.resolve()}")
    for settings, message in [({"nodes": 2}, "error: rdzv_endpoint: '': give machine 0's host:port"),
                              ({"nodes": 2, "rdzv_endpoint": "h:1", "node_rank": 2},
                               "error: node_rank: must be below nodes (2); got 2"),
                              ({"devices": 0}, "error: devices: must be at least 1 (got 0)"),
                              ({"devices": 2, "device": "cuda:1"}, "error: device: cuda:1 names one GPU, but devices=2")]:
        config.write_text(json.dumps({"kind": "pretrain", "corpus_id": corpus_id, **settings}))
        refused = cli(studio.workspace.root, "run", str(config))
        out = refused.communicate(timeout=120)[0]
        assert refused.returncode == 2 and message in out, out
    with pytest.raises(Exception, match="rdzv_endpoint: .* give machine 0's host:port"):
        studio.start_pretraining({"corpus_id": corpus_id, "nodes": 2})

"""Surviving a crash: the app process is killed with SIGKILL in the middle of a run and started again.

The next start marks the run `interrupted` with a message, keeps every metric logged before the kill,
keeps the queued run and runs it; resuming the interrupted run continues from its newest complete
checkpoint with its step count and its curve, and it completes.
"""

import pytest
from conftest import TINY_RUN, AppServer, wait_for
from gradio_client import Client, handle_file

from pretrain_studio.registry import Registry

pytestmark = pytest.mark.e2e


def test_sigkill_mid_run_then_restart_and_resume(tmp_path, wikitext_slice):
    workspace = tmp_path / "workspace"
    server = AppServer(workspace).start()
    try:
        client = Client(server.url, verbose=False)
        corpus = client.predict([handle_file(str(wikitext_slice))], "wiki", api_name="/upload_corpus")
        long_run = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 100_000,
                                   "save_steps": 8, "logging_steps": 1}, api_name="/start_pretraining")["run_id"]
        queued = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 5},
                                api_name="/start_pretraining")["run_id"]
        registry = Registry(workspace / "studio.db")
        checkpoints = workspace / "runs" / long_run / "checkpoints"
        wait_for(lambda: len(list(checkpoints.glob("checkpoint-*"))) >= 2 and registry.get_run(long_run)["step"] > 17,
                 timeout=600, message="two checkpoints")
    finally:
        server.process.kill()  # SIGKILL: no shutdown handlers, exactly like a crash
        server.process.wait(timeout=30)

    logged_before = registry.metrics_since(long_run)
    assert registry.get_run(long_run)["status"] == "running"  # what the dead process left behind

    server = AppServer(workspace).start()
    try:
        client = Client(server.url, verbose=False)
        status = client.predict(long_run, api_name="/run_status")
        assert status["status"] == "interrupted"
        assert "stopped while this run was training" in status["error"]
        after_restart = client.predict(long_run, 0, api_name="/run_metrics")
        assert [m["id"] for m in after_restart] == [m["id"] for m in logged_before]  # every point kept
        # The queued run was kept and the queue carried on by itself.
        queued_status = wait_for(lambda: (s := client.predict(queued, api_name="/run_status"))["status"]
                                 not in ("queued", "running") and s, timeout=300, message="the queued run")
        assert queued_status["status"] == "completed"

        newest_step = max(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
        resumed = client.predict(long_run, {"max_steps": newest_step + 8}, api_name="/resume_run")
        assert resumed["from_checkpoint"] is not None
        start_step = int(resumed["from_checkpoint"].split("-")[1])
        final = wait_for(lambda: (s := client.predict(long_run, api_name="/run_status"))["status"]
                         not in ("queued", "running") and s, timeout=600, message="the resumed run")
        assert final["status"] == "completed", final["error"]
        assert final["step"] == newest_step + 8
        steps = [m["step"] for m in client.predict(long_run, 0, api_name="/run_metrics") if m["name"] == "train_loss"]
        assert steps == sorted(set(steps)) and steps[-1] == newest_step + 8
        assert start_step in steps and start_step + 1 in steps  # the curve continues across the resume
    finally:
        server.stop()


def test_a_run_killed_by_sigkill_fails_alone_and_the_app_serves_on(tmp_path, wikitext_slice):
    """The kernel's out-of-memory killer sends SIGKILL to the process that trains. That process is a child of
    the app (training/child.py), so the run fails with a message saying so, and the app answers and starts
    the next queued run."""
    import os
    import signal

    import psutil

    server = AppServer(tmp_path / "workspace").start()
    try:
        client = Client(server.url, verbose=False)
        corpus = client.predict([handle_file(str(wikitext_slice))], "wiki", api_name="/upload_corpus")
        doomed = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 100_000,
                                 "logging_steps": 1}, api_name="/start_pretraining")["run_id"]
        queued = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 5},
                                api_name="/start_pretraining")["run_id"]
        status = wait_for(lambda: (s := client.predict(doomed, api_name="/run_status"))["step"] > 2 and s,
                          timeout=300, message="the first run to train")
        pid = status["info"]["process_pid"]
        assert pid != server.process.pid and psutil.pid_exists(pid)  # trained by a process of its own
        os.kill(pid, signal.SIGKILL)
        failed = wait_for(lambda: (s := client.predict(doomed, api_name="/run_status"))["status"] != "running" and s,
                          timeout=60, message="the killed run to be recorded")
        assert failed["status"] == "failed"
        assert "killed by SIGKILL" in failed["error"] and "out-of-memory" in failed["error"]
        assert "--- last log lines ---" in failed["error"]
        assert server.process.poll() is None  # the app lives
        done = wait_for(lambda: (s := client.predict(queued, api_name="/run_status"))["status"]
                        not in ("queued", "running") and s, timeout=300, message="the next queued run")
        assert done["status"] == "completed", done["error"]
        assert [m for m in client.predict(queued, 0, api_name="/run_metrics") if m["name"] == "train_loss"]
    finally:
        server.stop()

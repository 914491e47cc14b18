"""A run has an owner: the app leaves a live CLI command's run `running`, and marks it `interrupted` once gone.

The owner is the training process's pid, start time and machine (run_owner.py). Here: the liveness rules
on real processes (alive, killed, a zombie, a reused pid, another machine's heartbeat); the app's watcher
marking a run `interrupted` when its owner dies while the app runs; and, end to end, two real
`pretrain-studio pretrain` commands on one workspace, one of them killed with SIGKILL, then a real app
started on that workspace: the live command's run stays `running` and names its pid, Resume, Delete and a
CLI `resume` of it are refused, the app's Stop ends the command with its run `stopped`, and the killed
command's run is `interrupted`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import OFFLINE_ENV, REPO, AppServer, wait_for

from pretrain_studio import run_owner
from pretrain_studio.registry import Registry

TINY_CLI = ["--model-size", "tiny", "--vocab-size", "800", "--max-seq-length", "32", "--batch-size", "8",
            "--max-steps", "100000", "--logging-steps", "5", "--eval-steps", "100000", "--save-steps", "100000",
            "--eval-fraction", "0.05", "--device", "cpu", "--txt-mode", "paragraphs"]


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def identity_of(process: subprocess.Popen, role: str = "cli") -> dict:
    return {**run_owner.this_process(role), "pid": process.pid, "start": run_owner.process_start(process.pid)}


def add_running(registry: Registry, run_id: str, owner: dict | None) -> None:
    registry.create_run(run_id, name=run_id, kind="pretrain", config={}, corpus_id=None, parent_id=None,
                        device="cpu", max_steps=10, status="running", owner=owner)


def test_an_owner_is_alive_exactly_while_its_process_is(tmp_path):
    child = sleeper()
    try:
        owner = identity_of(child)
        assert owner["start"] is not None
        assert run_owner.owner_alive(owner, None)
        assert not run_owner.owner_alive({**owner, "start": str(int(owner["start"]) + 1)}, None)  # a reused pid
        child.kill()
        wait_for(lambda: not run_owner.owner_alive(owner, None), timeout=10, interval=0.05,
                 message="the killed, not yet reaped (zombie) process to count as gone")
    finally:
        child.kill()
        child.wait()
    assert not run_owner.owner_alive(owner, None)
    assert not run_owner.owner_alive(None, time.time())  # a row of an older version: nobody to ask

    # Another machine's owner (a workspace on a shared disk): alive while its heartbeat is within the lease.
    elsewhere = {**owner, "machine": "other-host/boot/pid:[1]", "host": "other-host"}
    assert run_owner.owner_alive(elsewhere, time.time() - 5)
    assert not run_owner.owner_alive(elsewhere, time.time() - run_owner.LEASE_SECONDS - 1)
    assert not run_owner.owner_alive(elsewhere, None)

    # This process: its run counts as owned while its training call is going (the Heartbeat).
    registry = Registry(tmp_path / "studio.db")
    me = run_owner.this_process("app")
    add_running(registry, "mine", me)
    registry.update_run("mine", heartbeat_at=time.time() - run_owner.LEASE_SECONDS - 1)
    assert registry.mark_interrupted(["mine"]) == ["mine"]  # nothing trains it here, and its lease ran out
    add_running(registry, "training", me)
    registry.update_run("training", heartbeat_at=0.0)
    with run_owner.Heartbeat(registry, "training", me, interval=0.05):
        assert registry.mark_interrupted() == []
        wait_for(lambda: registry.get_run("training")["heartbeat_at"] > time.time() - 5, timeout=5, interval=0.05,
                 message="the heartbeat")


def test_the_app_marks_a_run_interrupted_when_its_owner_dies_while_it_runs(tmp_path, monkeypatch):
    from pretrain_studio.studio import Studio, StudioError

    monkeypatch.setattr(run_owner, "WATCH_SECONDS", 0.3)
    live, doomed = sleeper(), sleeper()
    try:
        workspace = tmp_path / "workspace"
        Studio(workspace, start_worker=False).close()  # the workspace, with its sample data
        registry = Registry(workspace / "studio.db")
        add_running(registry, "legacy", None)  # an older version's row: no owner
        add_running(registry, "live", identity_of(live))
        add_running(registry, "doomed", identity_of(doomed))
        studio = Studio(workspace)  # as the app starts: recover, then the watcher
        try:
            assert studio.interrupted_at_start == ["legacy"]
            assert "the app stopped while this run was training" in registry.get_run("legacy")["error"]
            with pytest.raises(StudioError, match=f"pid {live.pid}"):
                studio.resume_run("live")
            with pytest.raises(StudioError, match=f"pid {live.pid}"):
                studio.delete_run("live")
            doomed.kill()
            doomed.wait()
            run = wait_for(lambda: (r := registry.get_run("doomed"))["status"] == "interrupted" and r, timeout=10,
                           interval=0.1, message="the watcher to see the owner gone")
            assert f"pid {doomed.pid}" in run["error"] and "stopped while this run was training" in run["error"]
            time.sleep(1)  # several watcher rounds: the live owner's run is left alone
            assert registry.get_run("live")["status"] == "running"
            from pretrain_studio.ui.i18n import use_language
            from pretrain_studio.ui.run_page import summary_markdown

            page = studio.get_run("live")  # the run page says who trains it, in both languages
            for lang in ("en", "zh"):
                with use_language(lang):
                    assert f"pid {live.pid}" in summary_markdown(page)
            assert studio.stop_run("live")["status"] == "running"  # asked; its owner polls for it
            assert registry.stop_requested("live")
        finally:
            studio.close()
    finally:
        for child in (live, doomed):
            child.kill()
            child.wait()


def start_cli(workspace, corpus, log_path) -> subprocess.Popen:
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pretrain_studio", "pretrain", "--workspace", str(workspace),
                             "--corpus", str(corpus), *TINY_CLI], cwd=REPO, env=env,
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT)


def cli_run(registry: Registry, process: subprocess.Popen) -> dict | None:
    """The run this CLI process trains, once it has taken a few steps."""
    if process.poll() is not None:
        raise AssertionError(f"the CLI exited with {process.returncode}")
    for run in registry.list_runs():
        if (run["owner"] or {}).get("pid") == process.pid and run["step"] >= 5:
            return run
    return None


@pytest.mark.e2e
def test_a_cli_run_survives_an_app_start_and_the_apps_stop_ends_it(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from pretrain_studio.studio import Studio

    workspace = tmp_path / "workspace"
    Studio(workspace, start_worker=False).close()  # made once, so two commands do not both add the samples
    registry = Registry(workspace / "studio.db")
    trainer = start_cli(workspace, REPO / "tests" / "data" / "moby_dick_crlf.txt", tmp_path / "cli-a.log")
    victim = start_cli(workspace, REPO / "assets" / "sample_corpus.txt", tmp_path / "cli-b.log")
    server = None
    try:
        try:
            live = wait_for(lambda: cli_run(registry, trainer), timeout=180, interval=0.5, message="CLI A training")
            killed = wait_for(lambda: cli_run(registry, victim), timeout=180, interval=0.5,
                              message="CLI B training")
        except AssertionError:
            raise AssertionError((tmp_path / "cli-a.log").read_text(errors="replace")[-3000:]
                                 + (tmp_path / "cli-b.log").read_text(errors="replace")[-3000:]) from None
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)

        server = AppServer(workspace).start()
        client = Client(server.url, verbose=False)
        status = client.predict(live["id"], api_name="/run_status")
        assert status["status"] == "running", status["error"]
        assert status["owner"]["pid"] == trainer.pid and status["owner"]["role"] == "cli"
        gone = client.predict(killed["id"], api_name="/run_status")
        assert gone["status"] == "interrupted"
        assert f"pid {victim.pid}" in gone["error"] and "stopped while this run was training" in gone["error"]

        with pytest.raises(AppError, match=f"pid {trainer.pid}"):
            client.predict(live["id"], {}, api_name="/resume_run")
        with pytest.raises(AppError, match=f"pid {trainer.pid}"):
            client.predict(live["id"], False, api_name="/delete_run")
        second = subprocess.run([sys.executable, "-m", "pretrain_studio", "resume", live["id"], "--workspace",
                                 str(workspace)], cwd=REPO, env={**os.environ, **OFFLINE_ENV},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"pid {trainer.pid}" in second.stderr, second.stderr
        assert trainer.poll() is None and registry.get_run(live["id"])["status"] == "running"

        client.predict(live["id"], api_name="/stop_run")
        assert trainer.wait(timeout=120) == 0
        run = registry.get_run(live["id"])
        assert run["status"] == "stopped" and run["step"] >= live["step"]
        assert "stopped at step" in (tmp_path / "cli-a.log").read_text(errors="replace")
        # A run whose owner has gone is the user's again: Delete is allowed.
        assert client.predict(killed["id"], False, api_name="/delete_run")["deleted"]
    finally:
        for process in (trainer, victim):
            if process.poll() is None:
                process.kill()
                process.wait()
        if server:
            server.stop()

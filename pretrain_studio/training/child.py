"""A one-device run the app trains: in a child process, never in a thread of the web server.

A crash in native code or a kernel OOM-kill then ends that run, not the app: the job runner's thread that
started the child sees it exit and marks the run `failed` with what the exit says (supervision.exit_sentence)
and the last lines of its log, and goes on with the next queued run. The other way round, a child whose app
has gone (killed, crashed) ends itself within a second, leaving its run `running` for the next start of the
app to mark `interrupted`, as a thread would have.

Children start from a fork server that has already imported torch, transformers and the training modules
(multiprocessing's "forkserver"), so a run starts in a fraction of a second instead of the five or more a
fresh interpreter takes to import them; the server is a clean single-threaded process, not a fork of the
web server and its threads. Where there is no fork server (Windows), children are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import spawn
import signal
import sys
import threading
import time

from .. import run_owner
from ..run_states import RunStatus
from ..workspace import Workspace, read_log_tail
from .reporting import RunReporter
from .execute import discard_outputs
from .supervision import die_with_parent, discarded_status, exit_sentence, watch

# Imported once by the fork server, so that every child has them already.
PRELOAD = ["pretrain_studio.training.execute", "pretrain_studio.training.pretrain",
           "pretrain_studio.training.finetune"]
MAIN_PATH_VARIABLE = "PRETRAIN_STUDIO_FORK_SERVER_MAIN"  # read by forkserver_init.py
_context: multiprocessing.context.BaseContext | None = None
_context_lock = threading.Lock()


def context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context children start from; the first call starts the fork server."""
    global _context
    with _context_lock:
        if _context is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            _context = multiprocessing.get_context(method)
            if method == "forkserver":
                _context.set_forkserver_preload([*PRELOAD, "pretrain_studio.training.forkserver_init"])
                # multiprocessing imports the main script (app.py: Gradio and the whole UI, seconds) into every
                # child, which needs nothing of it; the fork server passes itself off as that script instead.
                main_path = spawn.get_preparation_data("main").get("init_main_from_path")
                os.environ[MAIN_PATH_VARIABLE] = main_path or ""
                _start_fork_server()
    return _context


def _start_fork_server() -> None:
    """Start the fork server from a thread that lives as long as this process: the server dies with the thread
    that started it (forkserver_init.py), and a worker thread may end long before the app does."""
    started = threading.Event()

    def keep() -> None:
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        finally:
            started.set()
        threading.Event().wait()  # never returns

    threading.Thread(target=keep, name="fork-server-keeper", daemon=True).start()
    started.wait()


class ChildProcess:
    """A multiprocessing.Process, as supervision.watch sees a child."""

    def __init__(self, process):
        self.process = process

    def wait_for(self, timeout: float) -> bool:
        self.process.join(timeout)
        return self.process.exitcode is not None

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()


def train_in_child(workspace: Workspace, run: dict, closing: threading.Event | None = None) -> str:
    """Train a claimed one-device run in a child process and return its final status. When `closing` is set
    (the app is shutting down) the child is ended and the run becomes `interrupted`, as after a restart."""
    registry = workspace.registry
    run_id = run["id"]
    run_dir = workspace.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    reporter = RunReporter(registry, run_id, run_dir / "train.log")
    # Daemonic: should this process exit without closing its job runner, multiprocessing ends the child.
    process = context().Process(target=_train, args=(str(workspace.root), run_id, run["owner"]),
                                name=f"train-{run_id}", daemon=True)
    process.start()
    registry.update_run(run_id, info={"process_pid": process.pid})
    asked = watch(ChildProcess(process), registry, run_id, reporter.log, closing)
    code = process.exitcode
    now = registry.get_run(run_id)
    if not RunStatus(now["status"]).active:
        return now["status"]  # the child recorded how the run ended
    if closing is not None and closing.is_set():  # as after a restart: its owner, the app, is going
        registry.mark_interrupted([run_id], alive=lambda *_: False)
        return str(RunStatus.INTERRUPTED)
    if asked:  # a Cancel the child did not obey in time: what the user asked for, and nothing kept
        discard_outputs(run_dir)
        status = discarded_status(registry, run_id)
        registry.update_run(run_id, status=status, finished_at=time.time(), stop_requested=0)
        return status
    tail = read_log_tail(run_dir / "train.log", 8).rstrip() or "(none)"
    message = exit_sentence(code)
    reporter.log(message)
    registry.update_run(run_id, status=str(RunStatus.FAILED), finished_at=time.time(),
                        error=f"{message}\n--- last log lines ---\n{tail}")
    return str(RunStatus.FAILED)


def _train(root: str, run_id: str, app: dict) -> None:
    """The child: train the run the app (`app`, its run_owner identity) claimed, record its outcome, exit 0
    (1 when it failed)."""
    die_with_parent()  # the fork server: killed at once with the app (forkserver_init.py)
    threading.Thread(target=_end_with_app, args=(app,), name="app-watch", daemon=True).start()
    # transformers' seeded collators take any process not named "MainProcess" for a DataLoader worker and refuse
    # to seed; this child is the main process of its run.
    multiprocessing.current_process().name = "MainProcess"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models never come from a hub
    import datasets
    import transformers

    from .execute import execute_run

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    workspace = Workspace(root)
    status = execute_run(workspace, workspace.registry.get_run(run_id))
    sys.exit(1 if status == RunStatus.FAILED else 0)


def _end_with_app(app: dict) -> None:
    """End this child once the app that started it has gone: a second way, for a fork server that was not
    started from the keeper thread (multiprocessing restarts one that died) or a platform without prctl."""
    while run_owner.process_alive(app):
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)

"""The job runner: a persistent queue in the registry, one background worker thread per device.

Launching only writes a `queued` row and wakes the device's worker, so the caller returns at once. The
worker claims the oldest queued run for its device and trains it in a child process that it supervises
(training/child.py for one device, torchrun for several: training/launcher.py), so a crash or an OOM-kill
of a run fails that run and never the app; then it goes on with the next one. Because the queue is the
registry, a closed browser tab changes nothing, and after a crash `recover()` marks runs that were
`running` as `interrupted` once the process that trained them has gone (run_owner.py: a CLI command
training in a terminal on the same workspace keeps its run `running`); a watcher thread repeats that check
every `run_owner.WATCH_SECONDS` while the app runs. Closing the runner ends its children: their runs
become `interrupted`, as after a restart.
"""

from __future__ import annotations

import threading
import time
import traceback

from . import run_owner
from .config import ConfigError, config_from_dict
from .training import child
from .training.child import train_in_child
from .training.execute import execute_run
from .workspace import Workspace


class JobRunner:
    """Background workers, one per device, draining the registry's queue."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._workers: dict[str, threading.Thread] = {}
        self._wake: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.owner = run_owner.this_process("app")  # what this process records on the runs it trains
        self._watcher: threading.Thread | None = None

    def recover(self) -> list[str]:
        """Call once at start-up, before any worker runs: runs whose owner has gone become `interrupted`."""
        return self.workspace.registry.mark_interrupted()

    def start(self) -> None:
        """Start workers for every device that has queued runs (e.g. left from before a restart), and the
        watcher that marks runs `interrupted` when their owner (a CLI command, say) goes away later."""
        for device in self.workspace.registry.queued_devices():
            self.wake(device)
        # The fork server imports torch and the recipes (seconds): begun now, the first launch need not wait.
        threading.Thread(target=child.context, name="fork-server-warm-up", daemon=True).start()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="owner-watcher", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closing.wait(run_owner.WATCH_SECONDS):
            try:
                self.workspace.registry.mark_interrupted()
            except Exception:  # a locked or vanished registry: try again at the next round
                pass

    def wake(self, device: str) -> None:
        with self._lock:
            if device not in self._workers or not self._workers[device].is_alive():
                self._wake[device] = threading.Event()
                worker = threading.Thread(target=self._work, args=(device,), name=f"trainer-{device}", daemon=True)
                self._workers[device] = worker
                worker.start()
            self._wake[device].set()

    def busy(self) -> bool:
        return any(w.is_alive() for w in self._workers.values())

    def close(self) -> None:
        self._closing.set()
        for event in self._wake.values():
            event.set()
        # An idle worker leaves at once, a training one once its child has ended (SIGTERM, within a second or
        # two); waiting for them keeps them from touching a workspace being deleted.
        for worker in [*self._workers.values(), *([self._watcher] if self._watcher else [])]:
            worker.join(timeout=10.0)

    def _work(self, device: str) -> None:
        while not self._closing.is_set():
            run = self.workspace.registry.claim_next_queued(device, self.owner)
            if run is None:
                # Idle: sleep until woken, re-checking now and then in case a run was queued by another process.
                self._wake[device].wait(timeout=5.0)
                self._wake[device].clear()
                continue
            try:
                self._train(run)
            except Exception:  # even recording the failure failed (the registry's disk?): keep the worker alive
                traceback.print_exc()
                time.sleep(1.0)

    def _train(self, run: dict) -> None:
        """One device: a child process of ours, beating for it as its owner. Several: torchrun (execute_run
        supervises it, beating likewise)."""
        try:
            processes = config_from_dict(run["config"]).world_size()
        except (ConfigError, TypeError, KeyError):
            processes = 1  # the child validates again and fails the run with the field's message
        if processes > 1:
            execute_run(self.workspace, run, closing=self._closing)
            return
        with run_owner.Heartbeat(self.workspace.registry, run["id"], run["owner"]):
            train_in_child(self.workspace, run, self._closing)

"""Who trains a run: the owner a `running` row names, and how any process tells whether that owner still lives.

A run is trained by exactly one process: the app's worker thread, a CLI command in a terminal
(`pretrain-studio pretrain | finetune | run | resume`), or, for a multi-process run, the process that
supervises torchrun (its ranks are children; only the supervisor owns the run). That process is recorded
in the run's row (`runs.owner_json`) in the same statement that moves the run to `running`, and a run is
`interrupted` only once its owner is gone. Until then the app leaves it `running`, shows who trains it,
and refuses Resume, Delete and a second launch on it; Stop still works, because the owner's training
callback polls the registry's stop flag at every step.

The owner's identity is its pid, the process's start time (Linux: field 22 of /proc/<pid>/stat, clock
ticks since boot; elsewhere psutil's create_time when psutil is there) and its machine: the host name, the
kernel's boot id and the pid namespace. A pid alone is not enough: after a crash the number is handed to
a new, unrelated process; with the start time the pair never comes back (on the same boot). On the same
machine (and pid namespace) liveness is therefore checked directly and at once: the pid exists, is not a
zombie, and started when the owner did.

A process on another machine (a workspace on a network disk, shared by several hosts) cannot look at the
owner's process table, so the owner also refreshes a heartbeat (`runs.heartbeat_at`) every
`HEARTBEAT_SECONDS` from a small thread for as long as it trains; seen from elsewhere the owner is alive
while its heartbeat is younger than `LEASE_SECONDS`. A row with no owner (written by an older version) has
nobody to ask: it counts as gone. Inside this process, a run counts as owned only while its training call
is still going (`Heartbeat` registers it; just after the claim, before that call begins, the fresh heartbeat
the claim wrote stands in), so a worker thread that ended without recording an outcome does not keep its
run `running` for longer than the lease.

Where the checks happen: at app start (`JobRunner.recover`), every `WATCH_SECONDS` in the app
(`JobRunner`'s watcher), and just before acting on one run (run status, Stop, Resume, Delete), so a
killed CLI's run becomes `interrupted` the next time anyone looks. No SQL here (registry.py holds it all).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

HEARTBEAT_SECONDS = 10.0  # how often an owner refreshes runs.heartbeat_at
LEASE_SECONDS = 60.0  # seen from another machine, an owner whose heartbeat is older than this is gone
WATCH_SECONDS = 10.0  # how often the app looks for runs whose owner has gone

_owned: set[str] = set()  # run ids this process is training right now (see Heartbeat)
_owned_lock = threading.Lock()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def machine_id() -> str:
    """This machine and pid namespace: host name, boot id (Linux) and pid namespace. Processes that share it
    can check each other's pids; others rely on the heartbeat."""
    boot = _read("/proc/sys/kernel/random/boot_id") or ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{boot}/{namespace}"


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc/<pid>/stat, or None when there is none."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name (field 2) may hold spaces and parentheses
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """A token for when process `pid` started (same process, same token), or None when it cannot be read."""
    if os.path.isdir("/proc"):
        stat = _proc_stat(pid)
        return stat[1] if stat else None
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.3f}"
    except Exception:  # psutil missing, or no such process
        return None


def this_process(role: str) -> dict:
    """The identity this process records as a run's owner; `role` says what it is ("app", "cli", ...)."""
    pid = os.getpid()
    return {"pid": pid, "start": process_start(pid), "host": socket.gethostname(), "machine": machine_id(),
            "role": role}


def encode(owner: dict | None) -> str | None:
    return json.dumps(owner, sort_keys=True) if owner else None


def decode(text: str | None) -> dict | None:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def is_me(owner: dict | None) -> bool:
    return bool(owner) and owner.get("pid") == os.getpid() and owner.get("machine") == machine_id()


def process_alive(owner: dict) -> bool:
    """Whether the process `owner` names (on this machine) still runs: same pid, same start time."""
    pid = int(owner.get("pid") or 0)
    if pid <= 0:
        return False
    if os.path.isdir("/proc"):
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # gone, or a zombie nobody has reaped yet
            return False
        return owner.get("start") is None or stat[1] == owner.get("start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        pass
    start = owner.get("start")
    return start is None or process_start(pid) in (None, start)


def owner_alive(owner: dict | None, heartbeat_at: float | None, run_id: str | None = None,
                now: float | None = None) -> bool:
    """Whether the process named by `owner` is still there to train its run."""
    if not owner:
        return False  # a row from an older version: nobody to ask
    now = time.time() if now is None else now
    fresh = heartbeat_at is not None and now - float(heartbeat_at) < LEASE_SECONDS
    if is_me(owner):  # this process: alive while its training call for the run is going (or about to start)
        with _owned_lock:
            return run_id is None or run_id in _owned or fresh
    if owner.get("machine") == machine_id():
        return process_alive(owner)
    return fresh


def describe(owner: dict | None) -> str:
    """'the CLI process (pid 123 on host h)': how messages name an owner."""
    if not owner:
        return "an unknown process"
    what = {"app": "the app", "cli": "a pretrain-studio command", "torchrun": "a torchrun launch"}.get(
        owner.get("role"), "another process")
    return f"{what} (pid {owner.get('pid')} on host {owner.get('host')})"


class Heartbeat:
    """While a run trains in this process: it counts as owned here, and its heartbeat is refreshed."""

    def __init__(self, registry, run_id: str, owner: dict, interval: float = HEARTBEAT_SECONDS):
        self.registry, self.run_id, self.owner, self.interval = registry, run_id, owner, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        with _owned_lock:
            _owned.add(self.run_id)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        with _owned_lock:
            _owned.discard(self.run_id)

    def _beat(self) -> None:
        while not self._done.is_set():
            try:
                self.registry.heartbeat(self.run_id, self.owner)
            except Exception:  # a locked or full disk now and then must not end training
                pass
            self._done.wait(self.interval)

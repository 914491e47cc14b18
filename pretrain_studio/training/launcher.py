"""Several devices or machines: hand the run to torchrun, and supervise it as a child process.

A run whose config asks for more than one process (`devices` x `nodes` > 1) is not trained in the worker
thread. The worker (or the CLI) starts `torchrun` (the engine the field already uses; `accelerate launch`
users will recognise the DDP it runs) with one `pretrain_studio.training.rank_worker` process per device,
and waits for it:

- rank 0 records metrics, progress and the final status in the registry (training/distributed.py);
- Stop and Cancel reach every rank through rank 0's broadcast at each step; a Cancel that is not obeyed
  in time ends the launch by signal (supervision.py, as for a one-device run);
- when torchrun exits with an error, the run is marked `failed` with the failing rank and its message (from
  the rank's error file, or torchrun's own report when the rank was killed), and the tail of the launch log;
- the child gets SIGTERM if the thread that started it dies, so a killed app leaves no orphan training.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..config import JobConfig
from ..run_states import RunStatus
from ..workspace import read_log_tail
from .distributed import RANK_FOLDER, read_rank_files
from .reporting import RunReporter
from .supervision import die_with_parent, discarded_status, watch

LAUNCH_LOG = "torchrun.log"
TERMINATED = "stopped by torchrun"  # the start of the message of a rank that torchrun told to end


def rendezvous_id(cfg: JobConfig) -> str:
    """The same id on every machine that starts the same config (the node rank left out)."""
    values = {k: v for k, v in cfg.to_dict().items() if k != "node_rank"}
    return "studio-" + hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def torchrun_command(cfg: JobConfig, workspace_root: str | Path, run_id: str | None = None,
                     config_path: str | Path | None = None, show_progress: bool = False,
                     printable: bool = False) -> list[str]:
    """The torchrun command line for this config on this machine (`cfg.node_rank`). With `run_id` the ranks
    train that registered run; with `config_path` (machines other than 0, or a printed command) rank 0
    registers the run from the config and tells the others its id. `printable` spells it `torchrun ...`."""
    launch = ["torchrun"] if printable else [sys.executable, "-m", "torch.distributed.run"]
    launch += [f"--nproc-per-node={cfg.devices}", "--max-restarts=0"]
    if cfg.nodes > 1:
        # Static rendezvous at machine 0's address: node ranks are then the ones given, so the registry's
        # machine holds global rank 0 (the c10d rendezvous hands out ranks in arrival order).
        host, _, port = cfg.rdzv_endpoint.strip().rpartition(":")
        launch += [f"--nnodes={cfg.nodes}", f"--node-rank={cfg.node_rank}", f"--master-addr={host}",
                   f"--master-port={port}"]
    else:
        launch += ["--standalone"]  # one machine: torchrun picks a free local port
    launch += ["-m", "pretrain_studio.training.rank_worker", "--workspace", str(Path(workspace_root).resolve())]
    launch += ["--run-id", run_id] if run_id else ["--config", str(Path(config_path).resolve())]
    if show_progress:
        launch.append("--show-progress")
    return launch


def launch_environment(cfg: JobConfig) -> dict:
    """torchrun gives each process one CPU thread when it starts several; CPU processes should share the
    machine's cores instead (unless the user set OMP_NUM_THREADS)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    on_cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if on_cpu and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cfg.devices))
    return env


def _pump(stream, sinks) -> None:
    """Copy the launch's output to its log (and to the console for the CLI) as it comes."""
    for line in iter(stream.readline, b""):
        for sink in sinks:
            sink.write(line)
            sink.flush()


@dataclass
class Launch:
    """A running torchrun child, and the thread copying its output to the launch log."""

    process: subprocess.Popen
    pump: threading.Thread
    log: BinaryIO

    @classmethod
    def start(cls, command: list[str], env: dict, log_path: Path, echo: bool) -> "Launch":
        """Start torchrun with its output going to `log_path` (and to this console when `echo`)."""
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=die_with_parent)
        log = log_path.open("ab")
        sinks = [log] + ([sys.stdout.buffer] if echo else [])
        pump = threading.Thread(target=_pump, args=(process.stdout, sinks), daemon=True)
        pump.start()
        return cls(process, pump, log)

    def wait_for(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def finish(self) -> int:
        """Wait for torchrun to exit and its output to be written; its exit code."""
        code = self.process.wait()
        self.pump.join(timeout=10)
        self.log.close()
        return code


def supervise(workspace, run: dict, cfg: JobConfig, show_progress: bool = False, closing=None) -> str:
    """Train a claimed multi-process run (its validated `cfg`) through torchrun; return its final status."""
    registry = workspace.registry
    run_id = run["id"]
    run_dir = workspace.run_dir(run_id)
    for old in (run_dir / RANK_FOLDER).glob("rank-*.*"):  # a resumed run's earlier launch
        old.unlink()
    reporter = RunReporter(registry, run_id, run_dir / "train.log")
    command = torchrun_command(cfg, workspace.root, run_id=run_id, show_progress=show_progress)
    reporter.log(f"launching {cfg.world_size()} processes ({cfg.devices} per machine x {cfg.nodes} "
                 f"machine(s)) through torchrun; its output: {LAUNCH_LOG}")
    reporter.log("command: " + shlex.join(command))
    registry.update_run(run_id, info={"world_size": cfg.world_size(), "effective_batch_size":
                                      cfg.effective_batch_size(), "launcher": "torchrun"})
    launch = Launch.start(command, launch_environment(cfg), run_dir / LAUNCH_LOG, echo=show_progress)
    registry.update_run(run_id, info={"launcher_pid": launch.process.pid})
    cancelled = watch(launch, registry, run_id, reporter.log, closing)
    code = launch.finish()
    status = record_outcome(registry, run_id, run_dir, code, cancelled=cancelled)
    # Written last: from here on the run's status and error are final (rank 0 may have written them first).
    registry.update_run(run_id, info={"launcher_exit_code": code})
    return status


def record_outcome(registry, run_id: str, run_dir: Path, code: int, cancelled: bool) -> str:
    """The run's final status once torchrun has exited, recorded unless rank 0 already said it all."""
    now = registry.get_run(run_id)
    if code == 0 and not RunStatus(now["status"]).active:
        return now["status"]
    if cancelled:  # ended by force after a Cancel (or a search's prune): what was asked for
        status = discarded_status(registry, run_id)
        registry.update_run(run_id, status=status, finished_at=time.time(), stop_requested=0)
        return status
    message = failure_message(code, run_dir)
    if now["status"] == "failed" and message is None:
        return "failed"  # rank 0 failed first and recorded its own message and log lines
    registry.update_run(run_id, status="failed", finished_at=time.time(),
                        error=(message or f"torchrun ended with exit code {code}") + "\n--- last launch lines ---\n"
                        + launch_tail(run_dir / LAUNCH_LOG))
    return "failed"


def failure_message(code: int, run_dir: Path) -> str | None:
    """Which rank failed first and why, or None when rank 0 was the first to fail (it said so itself).
    torchrun's report names the first rank to fail (a rank killed by a signal leaves nothing else); a rank
    that raised an error also wrote its message, which says more than an exit code."""
    errors = {e.get("rank"): e for e in read_rank_files(run_dir, "error")
              if not e.get("message", "").startswith(TERMINATED)}
    root = torchrun_root_cause(launch_tail(run_dir / LAUNCH_LOG, lines=80))
    if root is not None:
        rank, sentence = root
        if rank == 0:
            return None
        if rank in errors:
            error = errors[rank]
            return f"rank {rank} of {error['world_size']} failed on {error['host']}: {error['message']}"
        return sentence
    if errors:  # no report from torchrun (cut short?): the earliest error written
        first = min(errors.values(), key=lambda e: e.get("time", 0))
        if first.get("rank") == 0:
            return None
        return f"rank {first['rank']} of {first['world_size']} failed on {first['host']}: {first['message']}"
    return None if code == 0 else f"torchrun ended with exit code {code}"


ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)\s*\(pid:\s*(\d+)\)"
                        r".*?traceback\s*:\s*([^\n]+)", re.DOTALL)


def torchrun_root_cause(text: str) -> tuple[int, str] | None:
    """torchrun's "Root Cause (first observed failure)" block -> (rank, one sentence)."""
    match = ROOT_CAUSE.search(text)
    if not match:
        return None
    rank, code, pid, why = match.groups()
    code = int(code)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        return int(rank), f"rank {rank} (pid {pid}) was killed by {name}: {why.strip()}"
    return int(rank), f"rank {rank} (pid {pid}) exited with code {code}: {why.strip()}"


def launch_tail(path: Path, lines: int = 12) -> str:
    return read_log_tail(path, lines).rstrip()

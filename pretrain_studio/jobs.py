"""The job runner: a persistent queue in the registry, one background worker thread per device.

Launching only writes a `queued` row and wakes the device's worker, so the
caller returns at once. The worker claims the oldest queued run for its
device, trains it, and records how it ended; a failing run is marked `failed`
with a plain message (training/failures.py: diverged, out of memory, disk
full) and its last log lines, and the worker goes on with the next one.
Because the queue is the registry, a closed browser tab changes nothing, and
after a crash `recover()` marks runs that were `running` as `interrupted` once the process that trained
them has gone (run_owner.py: a CLI command training in a terminal on the same workspace keeps its run
`running`); a watcher thread repeats that check every `run_owner.WATCH_SECONDS` while the app runs.
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from pathlib import Path

from . import run_owner
from .config import config_from_dict
from .workspace import Workspace, read_log_tail


def execute_run(workspace: Workspace, run: dict, show_progress: bool = False) -> str:
    """Train one claimed run to its end and record the outcome. Returns the final status.
    A run for several processes is handed to torchrun (training/launcher.py), whose ranks come back here;
    inside such a launch only rank 0 records anything in the registry (training/distributed.py)."""
    owner = run.get("owner")
    if run_owner.is_me(owner):  # the claiming process (not a torchrun rank of it): it beats while it trains
        with run_owner.Heartbeat(workspace.registry, run["id"], owner):
            return _execute_run(workspace, run, show_progress)
    return _execute_run(workspace, run, show_progress)


def _execute_run(workspace: Workspace, run: dict, show_progress: bool) -> str:
    from .training import distributed

    registry = workspace.registry
    run_id = run["id"]
    run_dir = workspace.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    main = distributed.is_main()
    reporter = distributed.reporter_for_rank(registry, run_id, run_dir)
    cfg = None
    try:
        cfg = config_from_dict(run["config"]).validate()
        if cfg.world_size() > 1 and not distributed.is_distributed():  # the ranks it starts come back here
            from .training.launcher import supervise

            return supervise(workspace, run, cfg, show_progress=show_progress)
        base_dir = resolve_model_dir(workspace, cfg.base_model) if cfg.base_model else None
        # Training modules are imported here so that merely listing runs (CLI `runs`, the UI) stays light.
        if cfg.kind == "finetune":
            from .training.finetune import run_finetuning

            dataset = registry.get_dataset(cfg.dataset_id)
            if dataset is None or not Path(dataset["path"]).is_dir():
                raise ValueError(f"the files of dataset {cfg.dataset_id!r} are missing; upload it again")
            result = run_finetuning(cfg, run_dir, reporter, dataset["path"], base_dir, show_progress=show_progress)
        else:
            from .training.pretrain import run_pretraining

            corpus = registry.get_corpus(cfg.corpus_id)
            if corpus is None:
                raise ValueError(f"corpus {cfg.corpus_id!r} is not in the registry")
            if not Path(corpus["path"]).is_dir():
                raise ValueError(f"the files of corpus {corpus['name']!r} are missing ({corpus['path']}); "
                                 "upload it again")
            downstream = []
            for dataset_id in cfg.downstream_datasets:
                dataset = registry.get_dataset(dataset_id)
                if dataset is None or not Path(dataset["path"]).is_dir():
                    raise ValueError(f"downstream dataset {dataset_id!r} is missing; upload it again or drop it "
                                     "from downstream_datasets")
                downstream.append((dataset_id, dataset["path"]))
            result = run_pretraining(cfg, run_dir, reporter, corpus["path"], base_dir, show_progress=show_progress,
                                     cache_dir=workspace.cache_dir, downstream=downstream)
        status = result["status"]
        if not main:
            return status  # rank 0 records how the run ended
        if status == "cancelled":  # cancel keeps nothing: no checkpoints, no model
            for folder in ("checkpoints", "model", "data"):
                shutil.rmtree(run_dir / folder, ignore_errors=True)
        registry.update_run(run_id, status=status, finished_at=time.time(), stop_requested=0)
    except Exception as exc:  # any failure ends this run honestly; the worker carries on
        from .training.failures import explain_failure

        unfinished = reporter.checkpoint_in_progress
        if main and unfinished is not None and unfinished.is_dir():  # rank 0 writes the checkpoints
            # Half a checkpoint is never resumed from (it has no completion marker); removing it frees the space
            # a full disk needs for the log and the registry to record this failure.
            shutil.rmtree(unfinished, ignore_errors=True)
        # The run's own last lines, read before the traceback goes to the log: they say where it was.
        tail = read_log_tail(run_dir / "train.log", 8).rstrip() or "(none: it failed before training started)"
        try:
            reporter.log("".join(traceback.format_exception(exc)).rstrip())
        except OSError:  # the disk may be the problem; the registry still gets the message
            pass
        message = explain_failure(exc, cfg, run_dir, run.get("device") or "", unfinished)
        if distributed.is_distributed():  # the launcher reads which rank failed first, and why
            distributed.write_rank_file(run_dir, "error", {"message": message})
        if main:
            registry.update_run(run_id, status="failed", finished_at=time.time(),
                                error=f"{message}\n--- last log lines ---\n{tail}")
        status = "failed"
    return status



def resolve_model_dir(workspace: Workspace, model: str):
    """A run id -> its saved model folder; otherwise a local folder that holds a config.json. Never a hub id,
    and only folders that pass the load policy (safetensors weights, no custom code)."""
    from .model_store import check_model_policy

    run = workspace.registry.get_run(model)
    if run is not None:
        folder = workspace.run_dir(model) / "model"
        if not any((folder / name).exists() for name in ("config.json", "studio_model.json")):
            gone = "; its model files are missing (were they deleted?)" if run["status"] == "completed" else ""
            raise ValueError(f"run {model} has no saved model (status: {run['status']}){gone}")
        check_model_policy(folder)
        return folder
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ValueError(f"model {model!r} is neither a run id nor an existing folder "
                         "(models load from the workspace or a local folder, never from a model hub)")
    if not any((folder / name).exists() for name in ("config.json", "studio_model.json")):  # model or adapter
        raise ValueError(f"folder {folder} is not a Hugging Face model (no config.json)")
    check_model_policy(folder)
    return folder.resolve()


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
        # An idle worker leaves at once; waiting for it keeps it from touching a workspace being deleted.
        # (A training worker finishes its run: the short timeout does not wait for that.)
        for worker in [*self._workers.values(), *([self._watcher] if self._watcher else [])]:
            worker.join(timeout=2.0)

    def _work(self, device: str) -> None:
        while not self._closing.is_set():
            run = self.workspace.registry.claim_next_queued(device, self.owner)
            if run is None:
                # Idle: sleep until woken, re-checking now and then in case a run was queued by another process.
                self._wake[device].wait(timeout=5.0)
                self._wake[device].clear()
                continue
            try:
                execute_run(self.workspace, run)
            except Exception:  # even recording the failure failed (the registry's disk?): keep the worker alive
                traceback.print_exc()
                time.sleep(1.0)

"""Train one claimed run to its end, in this process, and record how it ended in the registry.

The job runner's child process (`pretrain-studio run --run-id`), the CLI in the foreground and every torchrun
rank (rank_worker.py) come here. A failing run is marked `failed` with a plain message (failures.py:
diverged, out of memory, disk full) and its last log lines; a cancelled one keeps no files.
"""

from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

from .. import run_owner
from ..config import TOKEN_TASK, config_from_dict
from ..model_lookup import resolve_model_dir
from ..run_states import RunStatus
from ..workspace import Workspace, read_log_tail
from .intake import check_task
from .supervision import discarded_status


def discard_outputs(run_dir: Path) -> None:
    """Cancel keeps nothing: no checkpoints, no model, no prepared data."""
    for folder in ("checkpoints", "model", "data"):
        shutil.rmtree(run_dir / folder, ignore_errors=True)


def execute_run(workspace: Workspace, run: dict, show_progress: bool = False, closing=None) -> str:
    """Train one claimed run to its end and record the outcome. Returns the final status.
    A run for several processes is handed to torchrun (training/launcher.py), whose ranks come back here;
    inside such a launch only rank 0 records anything in the registry (training/distributed.py). `closing`
    (the job runner shutting down) ends such a launch."""
    owner = run.get("owner")
    if run_owner.is_me(owner):  # the claiming process (not a torchrun rank of it): it beats while it trains
        with run_owner.Heartbeat(workspace.registry, run["id"], owner):
            return _execute_run(workspace, run, show_progress, closing)
    return _execute_run(workspace, run, show_progress, closing)


def _execute_run(workspace: Workspace, run: dict, show_progress: bool, closing) -> str:
    from . import distributed

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
            from .launcher import supervise

            return supervise(workspace, run, cfg, show_progress=show_progress, closing=closing)
        base_dir = resolve_model_dir(workspace, cfg.base_model) if cfg.base_model else None
        # Training modules are imported here so that merely listing runs (CLI `runs`, the UI) stays light.
        if cfg.kind == "finetune":
            dataset = registry.get_dataset(cfg.dataset_id)
            if dataset is None or not Path(dataset["path"]).is_dir():
                raise ValueError(f"the files of dataset {cfg.dataset_id!r} are missing; upload it again")
            check_task(cfg, dataset)  # a config written by hand may say task "auto"
            if cfg.task == TOKEN_TASK:
                from .token_finetune import run_token_finetuning as recipe
            else:
                from .finetune import run_finetuning as recipe
            result = recipe(cfg, run_dir, reporter, dataset["path"], base_dir, show_progress=show_progress)
        else:
            from .pretrain import run_pretraining

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
        if status == RunStatus.CANCELLED:
            discard_outputs(run_dir)
            status = discarded_status(registry, run_id)
        registry.update_run(run_id, status=status, finished_at=time.time(), stop_requested=0)
    except Exception as exc:  # any failure ends this run honestly; the worker carries on
        from .failures import explain_failure

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
            registry.update_run(run_id, status=str(RunStatus.FAILED), finished_at=time.time(),
                                error=f"{message}\n--- last log lines ---\n{tail}")
        status = str(RunStatus.FAILED)
    return status

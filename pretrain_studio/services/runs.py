"""Keeping runs: the runs table, a run's page and status, metrics, names and tags, stop / cancel / resume /
delete, export, comparison and lineage.

What each status allows is asked of `run_states.RunStatus`; a `running` run whose owner has gone is settled
to `interrupted` before any action is judged (`_settled`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

from .. import run_owner
from ..config import ConfigError, config_from_dict
from ..errors import NotFoundError, StudioError
from ..registry import CANCEL, STOP
from ..run_states import RESUMABLE, RunStatus, names
from ..workspace import Workspace, read_log_tail
from .lineage import lineage
from .views import cli_command, run_summary

RESUME_OVERRIDES = ("max_steps", "num_epochs")  # a resumed run may train longer, nothing else changes
RESUMABLE_NAMES = ", ".join(names(RESUMABLE))


class RunService:
    """Everything done to runs that exist. `wake(device)` tells a device's worker that a run was requeued."""

    def __init__(self, workspace: Workspace, wake: Callable[[str], None]):
        self.workspace = workspace
        self.registry = workspace.registry
        self.wake = wake

    def find(self, run_id: str) -> dict:
        """The run's registry row, or NotFoundError."""
        run = self.registry.get_run(run_id or "")
        if run is None:
            raise NotFoundError(key="error.run_missing", id=repr(run_id))
        return run

    # --- the runs table and a run's page -----------------------------------------------

    def list_runs(self, filters: dict | None = None) -> list[dict]:
        """Summaries, newest first. filters: {kind, status, text (in name, id, tags, notes, method), tag}."""
        filters = filters or {}
        finals = self.registry.final_metrics()
        sources = {c["id"]: c["name"] for c in self.registry.list_corpora()}
        sources.update({d["id"]: d["name"] for d in self.registry.list_datasets()})
        out = []
        for run in self.registry.list_runs():
            row = run_summary(run)
            config = run["config"]
            row.update(method=config.get("method") if run["kind"] == "finetune" else "mlm",
                       base_model=config.get("base_model") or (config.get("model_size") and
                                                               f"scratch ({scratch_shape(config)})"),
                       data=sources.get(run["corpus_id"] or run.get("dataset_id"), ""),
                       tags=run["tags"], notes=run["notes"], best_metric=best_metric(run, finals.get(run["id"], {})),
                       # What the run's scores mean (training/verdict.py, training/downstream.py), for the table.
                       verdict=run["info"].get("verdict"), downstream=run["info"].get("downstream"))
            if _matches(row, filters):
                out.append(row)
        return out

    def run_status(self, run_id: str) -> dict:
        run = self.find(run_id)
        run_dir = self.workspace.run_dir(run_id)
        return {**run_summary(run), "config": run["config"], "info": run["info"],
                "owner": run["owner"] if run["status"] == RunStatus.RUNNING else None,
                "test_metrics": run["info"].get("test_metrics"), "baselines": run["info"].get("baselines"),
                "log_tail": read_log_tail(run_dir / "train.log"), "cli_command": cli_command(run_dir / "config.json")}

    def get_run(self, run_id: str) -> dict:
        """A run's page: status, saved config, CLI command, final metrics, log tail, files and lineage."""
        status = self.run_status(run_id)
        run_dir = self.workspace.run_dir(run_id)
        # Checkpoints and packed data are listed apart (checkpoints) or not at all: they are many and large.
        files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()
                       and p.relative_to(run_dir).parts[0] not in ("checkpoints", "data")) if run_dir.exists() else []
        checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) \
            if (run_dir / "checkpoints").is_dir() else []
        finals = self.registry.final_metrics([run_id]).get(run_id, {})
        row = self.registry.get_run(run_id)
        return {**status, "tags": row["tags"], "notes": row["notes"],
                "final_metrics": {name: v["last"] for name, v in finals.items()}, "files": files,
                "checkpoints": checkpoints, "lineage": self.lineage(run_id)}

    def lineage(self, run_id: str) -> dict:
        """Where a run comes from (corpus or dataset, base runs up the chain) and what was built on it."""
        return lineage(self.registry, self.find(run_id))

    def run_metrics(self, run_id: str, after_id: int = 0) -> list[dict]:
        rows = self.registry.metrics_since(run_id, int(after_id or 0))
        # Polled often: only an empty answer needs to tell "no new rows" from "no such run".
        if not rows and not self.registry.run_exists(run_id or ""):
            raise NotFoundError(key="error.run_missing", id=repr(run_id))
        return rows

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        self.find(run_id)
        return read_log_tail(self.workspace.run_dir(run_id) / "train.log", lines)

    # --- names, tags, notes ------------------------------------------------------------

    def rename_run(self, run_id: str, name: str) -> dict:
        self.find(run_id)
        name = (name or "").strip()
        if not name:
            raise StudioError("name: a run needs a non-empty name")
        self.registry.update_run(run_id, name=name)
        return {"run_id": run_id, "name": name}

    def tag_run(self, run_id: str, tags: list[str] | str, notes: str | None = None) -> dict:
        self.find(run_id)
        if isinstance(tags, str):
            tags = tags.split(",")
        self.registry.set_tags(run_id, [str(t).strip() for t in tags or [] if str(t).strip()],
                               None if notes is None else str(notes))
        run = self.registry.get_run(run_id)
        return {"run_id": run_id, "tags": run["tags"], "notes": run["notes"]}

    # --- lifecycle: stop, cancel, resume, delete -----------------------------------------

    def stop_run(self, run_id: str) -> dict:
        """Running: save a checkpoint and end as `stopped` (its owner, the app's worker or a CLI command, polls
        for the request at every step). Queued: leave the queue as `stopped`."""
        return self._end(run_id, STOP)

    def cancel_run(self, run_id: str) -> dict:
        """Running: end at once and keep no checkpoint (`cancelled`). Queued: leave the queue as `cancelled`."""
        return self._end(run_id, CANCEL)

    def _end(self, run_id: str, mode: int) -> dict:
        run = self._settled(run_id)
        status = RunStatus(run["status"])
        if not status.can_stop:
            raise StudioError(f"run {run_id} is {status}, not running or queued")
        ended = RunStatus.STOPPED if mode == STOP else RunStatus.CANCELLED
        left = status == RunStatus.QUEUED and self.registry.leave_queue(
            run_id, ended, "stopped before it started" if mode == STOP else None)
        if not left:  # running, or claimed by a worker between the look and the change: its owner obeys
            self.registry.request_stop(run_id, mode)
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"]}

    def _settled(self, run_id: str) -> dict:
        """The run, after checking that a `running` one still has its owner (else it is now `interrupted`)."""
        run = self.find(run_id)
        if run["status"] == RunStatus.RUNNING and self.registry.mark_interrupted([run_id]):
            run = self.find(run_id)
        return run

    def _refuse_while_owned(self, run: dict, action: str) -> None:
        if run["status"] == RunStatus.RUNNING:
            raise StudioError(f"run {run['id']} is running in {run_owner.describe(run['owner'])}: {action} is "
                              "refused while that process trains it; stop it first (Stop works from here too)")

    def resume_run(self, run_id: str, overrides: dict | None = None) -> dict:
        """Queue a stopped, interrupted or failed run again; it continues from its newest complete checkpoint
        (or starts over when it has none). overrides may raise max_steps or num_epochs. The run's metric rows
        after that checkpoint (all of them when there is none) are dropped as it is queued, so its curves
        never hold a step twice."""
        from ..training.checkpoints import checkpoint_step, newest_complete_checkpoint

        run = self._settled(run_id)
        self._refuse_while_owned(run, "resuming it")
        if not RunStatus(run["status"]).can_resume:
            raise StudioError(f"run {run_id} is {run['status']}; only {RESUMABLE_NAMES} runs can be resumed")
        overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
        unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if unknown:
            raise StudioError(f"{unknown[0]}: cannot be changed when resuming (only {', '.join(RESUME_OVERRIDES)})")
        try:
            cfg = config_from_dict({**run["config"], **overrides}).validate()
        except ConfigError as exc:
            raise StudioError.of(exc) from None
        run_dir = self.workspace.run_dir(run_id)
        checkpoint = newest_complete_checkpoint(run_dir / "checkpoints")
        done = checkpoint_step(checkpoint) if checkpoint else 0
        if cfg.max_steps and cfg.max_steps <= done:
            raise StudioError(f"max_steps: the run already trained {done} steps; raise max_steps above that "
                              "to train further")
        cfg.save(run_dir / "config.json")
        if not self.registry.reset_for_resume(run_id, done if checkpoint else None,
                                              config_json=json.dumps(cfg.to_dict()), max_steps=cfg.max_steps):
            now = self.find(run_id)  # resumed or started by someone else in the meantime
            raise StudioError(f"run {run_id} is {now['status']}; only {RESUMABLE_NAMES} runs can be resumed")
        self.wake(run["device"])
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"],
                "from_checkpoint": checkpoint.name if checkpoint else None}

    def delete_run(self, run_id: str, force: bool = False) -> dict:
        """Delete a run's rows and files. Refuses a running run, and (unless force) one that others build on."""
        run = self._settled(run_id)
        self._refuse_while_owned(run, "deleting it")
        if not RunStatus(run["status"]).can_delete:
            raise StudioError(f"run {run_id} is {run['status']}: cancel it before deleting it")
        dependents = self.registry.dependents(run_id)
        if dependents and not force:
            shown = ", ".join(f"{d['name']} ({d['id']})" for d in dependents[:5])
            raise StudioError(f"run {run_id} is the base of {len(dependents)} other run(s): {shown}. "
                              "Delete with force to remove it anyway (those runs keep their own files).")
        shutil.rmtree(self.workspace.run_dir(run_id), ignore_errors=True)
        self.registry.delete_run(run_id)
        return {"run_id": run_id, "deleted": True, "dependents": [d["id"] for d in dependents]}

    # --- export and comparison ------------------------------------------------------------

    def export_run(self, run_id: str, merged: bool = False) -> str:
        """Zip the run (model or adapter, config, metrics CSV, model card, command); returns the zip's path."""
        from ..export import export_run

        run = self.find(run_id)
        if run["kind"] == "finetune":
            row = self.registry.get_dataset(run["dataset_id"]) if run.get("dataset_id") else None
            data = {**row, "kind": "labelled dataset"} if row else None
        else:
            row = self.registry.get_corpus(run["corpus_id"]) if run["corpus_id"] else None
            data = {**row, "kind": "corpus"} if row else None
        finals = {name: v["last"] for name, v in self.registry.final_metrics([run_id]).get(run_id, {}).items()}
        run_dir = self.workspace.run_dir(run_id)
        try:
            path = export_run(run, run_dir, self.workspace.root / "exports", data=data,
                              metrics=self.registry.metrics_since(run_id), finals=finals,
                              command=cli_command(run_dir / "config.json"), merged=merged)
        except ValueError as exc:
            raise StudioError.of(exc) from None
        return str(path)

    def compare_runs(self, run_ids: list[str]) -> dict:
        """Settings that differ, final metrics, and (downsampled) curves of two or more runs."""
        if not run_ids or len(run_ids) < 2:
            raise StudioError("run_ids: choose at least two runs to compare")
        runs = [self.find(r) for r in run_ids]
        configs = {r["id"]: r["config"] for r in runs}
        keys = sorted(set().union(*configs.values()) - {"name"})
        differing = {k: {rid: cfg.get(k) for rid, cfg in configs.items()} for k in keys
                     if len({repr(cfg.get(k)) for cfg in configs.values()}) > 1}
        finals = self.registry.final_metrics(run_ids)
        return {
            "runs": [{"run_id": r["id"], "name": r["name"], "kind": r["kind"], "status": r["status"]} for r in runs],
            "differing_settings": differing,
            "final_metrics": {rid: {name: v["last"] for name, v in finals.get(rid, {}).items()} for rid in run_ids},
        }


def best_metric(run: dict, finals: dict) -> dict | None:
    """The figure a runs table sorts by: lowest eval loss for pretraining, highest macro-F1 for fine-tuning."""
    name, pick = ("eval_f1", "max") if run["kind"] == "finetune" else ("eval_loss", "min")
    if name not in finals:
        return None
    return {"name": name, "value": finals[name][pick]}


def scratch_shape(config: dict) -> str:
    """A from-scratch run's model in the runs table: its size preset, and its architecture unless BERT."""
    architecture = config.get("architecture") or "bert"
    return config["model_size"] + ("" if architecture == "bert" else f" {architecture}")


def _matches(row: dict, filters: dict) -> bool:
    if filters.get("kind") and row["kind"] != filters["kind"]:
        return False
    if filters.get("status") and row["status"] != filters["status"]:
        return False
    if filters.get("tag") and filters["tag"] not in row["tags"]:
        return False
    text = (filters.get("text") or "").strip().lower()
    if text:
        haystack = " ".join(str(row.get(k) or "") for k in ("name", "run_id", "notes", "method", "data", "base_model"))
        if text not in (haystack + " " + " ".join(row["tags"])).lower():
            return False
    return True

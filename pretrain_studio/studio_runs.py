"""Experiment management, the run-keeping part of the engine's front desk.

Covers the runs table (filters, best metric, duration), a run's page (lineage both ways, files), rename,
tags and notes, delete, cancel, resume, the queue's order, sweeps and comparison. `RunsDesk` is mixed into
`Studio` (studio.py), which provides the workspace, the registry, the queue and `_run`. Plain data in
and out; `StudioError` for anything the user can fix. Export lives in export.py.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time

from . import run_owner
from .config import ConfigError, config_from_dict
from .registry import CANCEL, new_id
from .studio_finetune import StudioError

RESUMABLE = ("stopped", "interrupted", "failed")
RESUME_OVERRIDES = ("max_steps", "num_epochs")  # a resumed run may train longer, nothing else changes
MAX_SWEEP_RUNS = 36


class RunsDesk:
    """Run listing, lineage, lifecycle (cancel, resume, delete), queue order, sweeps and comparison."""

    # --- the runs table ---------------------------------------------------------------

    def list_runs(self, filters: dict | None = None) -> list[dict]:
        """Summaries, newest first. filters: {kind, status, text (in name, id, tags, notes, method), tag}."""
        from .studio import run_summary

        filters = filters or {}
        runs = self.registry.list_runs()
        finals = self.registry.final_metrics()
        sources = {c["id"]: c["name"] for c in self.registry.list_corpora()}
        sources.update({d["id"]: d["name"] for d in self.registry.list_datasets()})
        out = []
        for run in runs:
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

    def get_run(self, run_id: str) -> dict:
        """A run's page: status, saved config, CLI command, final metrics, log tail, files and lineage."""
        status = self.run_status(run_id)
        run_dir = self.workspace.run_dir(run_id)
        files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()
                       and "checkpoints" not in p.parts[len(run_dir.parts):][:1] and "data" not in
                       p.parts[len(run_dir.parts):][:1]) if run_dir.exists() else []
        checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) \
            if (run_dir / "checkpoints").is_dir() else []
        finals = self.registry.final_metrics([run_id]).get(run_id, {})
        row = self.registry.get_run(run_id)
        return {**status, "tags": row["tags"], "notes": row["notes"],
                "final_metrics": {name: v["last"] for name, v in finals.items()}, "files": files,
                "checkpoints": checkpoints, "lineage": self.lineage(run_id)}

    def lineage(self, run_id: str) -> dict:
        """Where a run comes from (corpus or dataset, base runs up the chain) and what was built on it."""
        run = self._run(run_id)
        ancestors, parent = [], run["parent_id"]
        while parent and (up := self.registry.get_run(parent)) and len(ancestors) < 50:
            ancestors.append(_node(up))
            parent = up["parent_id"]
        root = self.registry.get_run(ancestors[-1]["run_id"]) if ancestors else run
        corpus = self.registry.get_corpus(root["corpus_id"]) if root["corpus_id"] else None
        dataset = self.registry.get_dataset(run["dataset_id"]) if run.get("dataset_id") else None
        base = root["config"].get("base_model")
        return {
            "corpus": {"corpus_id": corpus["id"], "name": corpus["name"]} if corpus else None,
            "tokenizer": "trained on the corpus" if root["kind"] == "pretrain" and not base
            else f"from {base}" if base else None,
            "dataset": {"dataset_id": dataset["id"], "name": dataset["name"]} if dataset else None,
            "ancestors": ancestors,  # nearest first
            "descendants": self._descendants(run_id),
        }

    def _descendants(self, run_id: str, depth: int = 0) -> list[dict]:
        if depth > 20:
            return []
        return [{**_node(child), "children": self._descendants(child["id"], depth + 1)}
                for child in self.registry.dependents(run_id)]

    # --- names, tags, notes ------------------------------------------------------------------

    def rename_run(self, run_id: str, name: str) -> dict:
        self._run(run_id)
        name = (name or "").strip()
        if not name:
            raise StudioError("name: a run needs a non-empty name")
        self.registry.update_run(run_id, name=name)
        return {"run_id": run_id, "name": name}

    def tag_run(self, run_id: str, tags: list[str] | str, notes: str | None = None) -> dict:
        self._run(run_id)
        if isinstance(tags, str):
            tags = tags.split(",")
        clean = sorted({str(t).strip() for t in tags or [] if str(t).strip()})
        values = {"tags_json": json.dumps(clean)}
        if notes is not None:
            values["notes"] = str(notes)
        self.registry.update_run(run_id, **values)
        run = self.registry.get_run(run_id)
        return {"run_id": run_id, "tags": run["tags"], "notes": run["notes"]}

    # --- lifecycle: cancel, resume, delete ------------------------------------------------------

    def cancel_run(self, run_id: str) -> dict:
        """Running: end at once and keep no checkpoint (`cancelled`). Queued: leave the queue as `cancelled`."""
        run = self._settled(run_id)
        if run["status"] == "running":
            self.registry.request_stop(run_id, CANCEL)
        elif run["status"] == "queued":
            self.registry.update_run(run_id, status="cancelled", finished_at=time.time())
        else:
            raise StudioError(f"run {run_id} is {run['status']}, not running or queued")
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"]}

    def _settled(self, run_id: str) -> dict:
        """The run, after checking that a `running` one still has its owner (else it is now `interrupted`)."""
        run = self._run(run_id)
        if run["status"] == "running" and self.registry.mark_interrupted([run_id]):
            run = self._run(run_id)
        return run

    def _refuse_while_owned(self, run: dict, action: str) -> None:
        if run["status"] == "running":
            raise StudioError(f"run {run['id']} is running in {run_owner.describe(run['owner'])}: {action} is "
                              "refused while that process trains it; stop it first (Stop works from here too)")

    def resume_run(self, run_id: str, overrides: dict | None = None) -> dict:
        """Queue a stopped, interrupted or failed run again; it continues from its newest complete checkpoint
        (or starts over when it has none). overrides may raise max_steps or num_epochs. The run's metric rows
        after that checkpoint (all of them when there is none) are dropped as it is queued, so its curves
        never hold a step twice."""
        from .training.checkpoints import checkpoint_step, newest_complete_checkpoint

        run = self._settled(run_id)
        self._refuse_while_owned(run, "resuming it")
        if run["status"] not in RESUMABLE:
            raise StudioError(f"run {run_id} is {run['status']}; only {', '.join(RESUMABLE)} runs can be resumed")
        overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
        unknown = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if unknown:
            raise StudioError(f"{unknown[0]}: cannot be changed when resuming (only {', '.join(RESUME_OVERRIDES)})")
        values = {**run["config"], **overrides}
        try:
            cfg = config_from_dict(values).validate()
        except ConfigError as exc:
            raise StudioError(str(exc)) from None
        checkpoint = newest_complete_checkpoint(self.workspace.run_dir(run_id) / "checkpoints")
        done = checkpoint_step(checkpoint) if checkpoint else 0
        if cfg.max_steps and cfg.max_steps <= done:
            raise StudioError(f"max_steps: the run already trained {done} steps; raise max_steps above that "
                              "to train further")
        cfg.save(self.workspace.run_dir(run_id) / "config.json")
        if not self.registry.reset_for_resume(run_id, done if checkpoint else None, RESUMABLE,
                                              config_json=json.dumps(cfg.to_dict()), max_steps=cfg.max_steps):
            now = self._run(run_id)  # resumed or started by someone else in the meantime
            raise StudioError(f"run {run_id} is {now['status']}; only {', '.join(RESUMABLE)} runs can be resumed")
        self.wake_worker(run["device"])
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"],
                "from_checkpoint": checkpoint.name if checkpoint else None}

    def delete_run(self, run_id: str, force: bool = False) -> dict:
        """Delete a run's rows and files. Refuses a running run, and (unless force) one that others build on."""
        run = self._settled(run_id)
        self._refuse_while_owned(run, "deleting it")
        if run["status"] in ("running", "queued"):
            raise StudioError(f"run {run_id} is {run['status']}: cancel it before deleting it")
        dependents = self.registry.dependents(run_id)
        if dependents and not force:
            names = ", ".join(f"{d['name']} ({d['id']})" for d in dependents[:5])
            raise StudioError(f"run {run_id} is the base of {len(dependents)} other run(s): {names}. "
                              "Delete with force to remove it anyway (those runs keep their own files).")
        shutil.rmtree(self.workspace.run_dir(run_id), ignore_errors=True)
        self.registry.delete_run(run_id)
        return {"run_id": run_id, "deleted": True, "dependents": [d["id"] for d in dependents]}

    # --- the queue and sweeps -------------------------------------------------------------------------

    def queue(self) -> list[dict]:
        from .studio import run_summary

        return [run_summary(r) for r in self.registry.queue()]

    def move_in_queue(self, run_id: str, position: int) -> list[dict]:
        """Put a queued run at `position` (0 = next to run); returns the new queue."""
        order = [r["id"] for r in self.registry.queue()]
        if run_id not in order:
            raise StudioError(f"run {run_id} is not queued")
        order.remove(run_id)
        order.insert(max(0, min(int(position), len(order))), run_id)
        self.registry.set_queue_order(order)
        return self.queue()

    def enqueue_sweep(self, config: dict, grid: dict) -> list[str]:
        """Queue one run per combination of a grid over up to two settings, e.g.
        {"lora_r": [4, 8, 16], "learning_rate": [5e-4, 1e-3]}. Every combination is validated before any is
        queued; they run one after another and a failing one does not stop the rest."""
        if not grid or len(grid) > 2:
            raise StudioError("grid: give one or two settings, each with a list of values")
        for key, values in grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise StudioError(f"grid.{key}: give a non-empty list of values")
        combos = list(itertools.product(*grid.values()))
        if len(combos) > MAX_SWEEP_RUNS:
            raise StudioError(f"grid: {len(combos)} runs is more than the limit of {MAX_SWEEP_RUNS}")
        finetune = config.get("kind") == "finetune" or "dataset_id" in config
        build = self.finetune_config if finetune else self.pretrain_config
        sweep_id = new_id("sweep")  # unique even for two sweeps queued in the same second
        configs = []
        for combo in combos:
            chosen = dict(zip(grid, combo))
            label = ", ".join(f"{k}={v}" for k, v in chosen.items())
            values = {k: v for k, v in config.items() if k != "kind"}
            values.update(chosen, name=f"{config.get('name') or 'sweep'} [{label}]")
            try:
                configs.append(build(values))
            except StudioError as exc:
                raise StudioError(f"sweep member {label}: {exc}") from None
        run_ids = [self._queue(cfg)["run_id"] for cfg in configs]
        for run_id in run_ids:
            self.tag_run(run_id, [sweep_id])
        return run_ids

    # --- export -------------------------------------------------------------------------------------------

    def export_run(self, run_id: str, merged: bool = False) -> str:
        """Zip the run (model or adapter, config, metrics CSV, model card, command); returns the zip's path."""
        from .export import export_run
        from .studio import cli_command

        run = self._run(run_id)
        if run["kind"] == "finetune":
            row = self.registry.get_dataset(run["dataset_id"]) if run.get("dataset_id") else None
            data = {**row, "kind": "labelled dataset"} if row else None
        else:
            row = self.registry.get_corpus(run["corpus_id"]) if run["corpus_id"] else None
            data = {**row, "kind": "corpus"} if row else None
        finals = {name: v["last"] for name, v in self.registry.final_metrics([run_id]).get(run_id, {}).items()}
        try:
            path = export_run(run, self.workspace.run_dir(run_id), self.workspace.root / "exports", data=data,
                              metrics=self.registry.metrics_since(run_id), finals=finals,
                              command=cli_command(self.workspace.run_dir(run_id) / "config.json"), merged=merged)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        return str(path)

    # --- comparison ------------------------------------------------------------------------------------

    def compare_runs(self, run_ids: list[str]) -> dict:
        """Settings that differ, final metrics, and (downsampled) curves of two or more runs."""
        if not run_ids or len(run_ids) < 2:
            raise StudioError("run_ids: choose at least two runs to compare")
        runs = [self._run(r) for r in run_ids]
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


def _node(run: dict) -> dict:
    return {"run_id": run["id"], "name": run["name"], "kind": run["kind"], "status": run["status"],
            "method": run["config"].get("method", "mlm")}


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


def scratch_shape(config: dict) -> str:
    """A from-scratch run's model in the runs table: its size preset, and its architecture unless BERT."""
    architecture = config.get("architecture") or "bert"
    return config["model_size"] + ("" if architecture == "bert" else f" {architecture}")

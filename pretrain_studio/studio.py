"""The engine's front desk: every user action, shared by the browser UI, the API and the CLI.

`Studio` wraps a workspace, its registry and the job runner. Its methods take
and return plain Python data (dicts, lists, strings) and raise `StudioError`
with a message that names the problem; the UI and API turn that into
`gr.Error`, the CLI into a one-line message and exit code 2. No Gradio here.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from .config import ConfigError, PretrainConfig, field_docs
from .data.corpus import CorpusError, ingest_corpus, load_corpus, preview_rows
from .jobs import JobRunner, resolve_model_dir
from .registry import new_id
from .studio_finetune import FinetuneDesk, NotFoundError, StudioError
from .studio_runs import RunsDesk
from .workspace import Workspace, read_log_tail

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_CORPUS = ASSETS / "sample_corpus.txt"
SAMPLE_CORPUS_NAME = "Sample: Persuasion (Austen)"
SAMPLE_DATASET = ASSETS / "sample_labelled.csv"
SAMPLE_DATASET_NAME = "Sample: who wrote it? (Austen, Chesterton, Melville)"
REPORT_SAMPLE_DOCS = 2000  # documents used for the pre-launch tokenizer report
REPORT_SAMPLE_CHARS = 4_000_000  # ... and at most this much text: one document may hold 1,000,000 characters
PREVIEW_CHARS = 1000  # a corpus preview shows the start of each document, never a whole book


class Studio(RunsDesk, FinetuneDesk):
    """One workspace, its registry and its background job runner."""

    def __init__(self, root: str | Path | None = None, start_worker: bool = True):
        self.workspace = Workspace(root)
        self.registry = self.workspace.registry
        self.runner = JobRunner(self.workspace)
        self.interrupted_at_start: list[str] = []
        self.worker_enabled = start_worker  # the CLI trains in the foreground and must not start a worker
        if start_worker:
            self.interrupted_at_start = self.runner.recover()
            self.runner.start()
        if self.workspace.is_new and SAMPLE_CORPUS.exists():
            self.upload_corpus([SAMPLE_CORPUS], SAMPLE_CORPUS_NAME, txt_mode="paragraphs")
        if self.workspace.is_new and SAMPLE_DATASET.exists():
            self.upload_dataset(SAMPLE_DATASET_NAME, SAMPLE_DATASET, "text", "label")

    # --- corpora ----------------------------------------------------------------

    def upload_corpus(self, files: list, name: str = "", txt_mode: str = "lines",
                      text_column: str | None = None, dedupe: bool = True, strip_gutenberg: bool = False,
                      drop_boilerplate_lines: bool = False, near_duplicates: bool = False) -> dict:
        """Ingest files as one corpus; nothing is stored when any file is bad. Exact duplicate documents are
        removed unless dedupe is false; the other cleaning filters are off unless asked for (data/corpus.py)."""
        # Gradio hands over str paths (UI) or FileData dicts (API); tests and the CLI pass Path objects.
        paths = [Path(f["path"] if isinstance(f, dict) else f) for f in (files or [])]
        if not paths:
            raise StudioError("no files given: upload at least one .txt, .jsonl, .csv, .tsv or .parquet file")
        corpus_id = new_id("corpus")
        dest = self.workspace.corpus_dir(corpus_id)
        try:
            stats = ingest_corpus(paths, dest, txt_mode=txt_mode, text_column=text_column or None, dedupe=dedupe,
                                  strip_gutenberg=strip_gutenberg, drop_boilerplate_lines=drop_boilerplate_lines,
                                  near_duplicates=near_duplicates)
        except CorpusError as exc:
            raise StudioError(str(exc)) from None
        name = (name or "").strip() or paths[0].name
        try:
            row = self.registry.add_corpus(corpus_id, name, str(dest), stats.to_dict())
        except Exception:
            shutil.rmtree(dest, ignore_errors=True)  # registry and disk must agree
            raise
        return corpus_summary(row)

    def list_corpora(self) -> list[dict]:
        return [corpus_summary(row) for row in self.registry.list_corpora()]

    def get_corpus(self, corpus_id: str) -> dict:
        row = self.registry.get_corpus(corpus_id)
        if row is None:
            raise NotFoundError(f"corpus {corpus_id!r} does not exist")
        return {**corpus_summary(row), "stats": row["stats"], "preview": preview_rows(row["path"], 10, max_chars=PREVIEW_CHARS)}

    # --- pretraining --------------------------------------------------------------

    def pretrain_config(self, values: dict, check_data: bool = True) -> PretrainConfig:
        """A validated config from a dict of field values; errors name the field. check_data=False skips the
        corpus lookup (the CLI checks the settings before it ingests the files that become the corpus)."""
        try:
            cfg = PretrainConfig.from_dict(values or {}).validate()
        except ConfigError as exc:
            raise StudioError(str(exc)) from None
        if check_data and self.registry.get_corpus(cfg.corpus_id) is None:
            raise StudioError(f"corpus_id: corpus {cfg.corpus_id!r} does not exist")
        for dataset_id in cfg.downstream_datasets:
            dataset = self.registry.get_dataset(dataset_id)
            if dataset is None:
                raise StudioError(f"downstream_datasets: dataset {dataset_id!r} does not exist")
            if "validation" not in dataset["stats"].get("splits", {}):
                raise StudioError(f"downstream_datasets: dataset {dataset_id!r} has no validation split to score on")
        self._check_model_and_device(cfg)
        return cfg

    def _check_model_and_device(self, cfg) -> None:
        """Checks shared by every job kind: the base model resolves and fits, the device and precision exist."""
        if cfg.base_model:
            from .preflight import check_base_model

            try:
                base = resolve_model_dir(self.workspace, cfg.base_model)
            except ValueError as exc:
                raise StudioError(f"base_model: {exc}") from None
            try:  # weights, tokenizer and config are there and fit: read from disk, no weights loaded
                check_base_model(base, cfg.max_seq_length)
            except ConfigError as exc:
                raise StudioError(str(exc)) from None
        from .training.hardware import check_precision, resolve_device

        try:
            check_precision(cfg.precision, resolve_device(cfg.device))
        except ConfigError as exc:
            raise StudioError(str(exc)) from None
        import importlib.util

        from .config import TRACKERS

        for tracker in cfg.trackers():
            if importlib.util.find_spec(TRACKERS[tracker]) is None:
                raise StudioError(f"report_to: {tracker} is not installed (pip install {TRACKERS[tracker]})")

    def start_pretraining(self, values: dict) -> dict:
        """Validate, queue, and return at once: {run_id, status}."""
        return self._queue(self.pretrain_config(values))

    def _queue(self, cfg) -> dict:
        from .training.hardware import resolve_device

        run_id = self._create_run(cfg, resolve_device(cfg.device))
        self.wake_worker(self.registry.get_run(run_id)["device"])
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"]}

    def create_foreground_run(self, values: dict, role: str = "cli") -> str:
        """For the CLI: a run recorded in the registry but trained by the caller, not the worker. The calling
        process is recorded as its owner (run_owner.py), so an app started meanwhile leaves it running."""
        cfg = self.finetune_config(values) if values.get("kind") == "finetune" else self.pretrain_config(values)
        from .run_owner import this_process
        from .training.hardware import resolve_device

        return self._create_run(cfg, resolve_device(cfg.device), status="running", owner=this_process(role))

    def wake_worker(self, device: str) -> None:
        if self.worker_enabled:
            self.runner.wake(device)

    def _create_run(self, cfg, device: str, status: str = "queued", owner: dict | None = None) -> str:
        run_id = new_id("run")
        run_dir = self.workspace.run_dir(run_id)
        run_dir.mkdir(parents=True)
        cfg.save(run_dir / "config.json")
        if cfg.kind == "finetune":
            source = self.registry.get_dataset(cfg.dataset_id)["name"]
        else:
            source = self.registry.get_corpus(cfg.corpus_id)["name"]
        name = cfg.name or default_run_name(cfg, source)
        parent = cfg.base_model if cfg.base_model and self.registry.get_run(cfg.base_model) else None
        self.registry.create_run(run_id, name=name, kind=cfg.kind, config=cfg.to_dict(),
                                 corpus_id=getattr(cfg, "corpus_id", None), dataset_id=getattr(cfg, "dataset_id", None),
                                 parent_id=parent, device=device, max_steps=cfg.max_steps, status=status,
                                 owner=owner)
        return run_id

    def tokenizer_report(self, values: dict) -> dict:
        """Before launch: unknown-token rate, unknown-character rate (characters that become [UNK] among all
        characters), share of CJK characters and share of documents longer than max_seq_length, measured on a
        sample of the corpus with the tokenizer the run would use."""
        cfg = self.pretrain_config(values)
        from .data.tokenizer import iter_text_batches, tokenizer_report, train_tokenizer

        corpus = load_corpus(self.registry.get_corpus(cfg.corpus_id)["path"])
        sample, characters = [], 0
        for batch in iter_text_batches(corpus, batch_size=50, limit=REPORT_SAMPLE_DOCS):  # bounded by documents
            sample.extend(batch)
            characters += sum(map(len, batch))
            if characters >= REPORT_SAMPLE_CHARS:  # ... and by text
                break
        if cfg.base_model:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(self.workspace, cfg.base_model))
        else:
            tokenizer = train_tokenizer(iter_text_batches(corpus, limit=20 * REPORT_SAMPLE_DOCS),
                                        cfg.vocab_size, cfg.lowercase)
        return tokenizer_report(tokenizer, sample, cfg.max_seq_length)

    # --- runs -----------------------------------------------------------------------

    def run_status(self, run_id: str) -> dict:
        run = self._run(run_id)
        return {**run_summary(run), "config": run["config"], "info": run["info"],
                "owner": run["owner"] if run["status"] == "running" else None,
                "test_metrics": run["info"].get("test_metrics"), "baselines": run["info"].get("baselines"),
                "log_tail": read_log_tail(self.workspace.run_dir(run_id) / "train.log"),
                "cli_command": cli_command(self.workspace.run_dir(run_id) / "config.json")}

    def run_metrics(self, run_id: str, after_id: int = 0) -> list[dict]:
        rows = self.registry.metrics_since(run_id, int(after_id or 0))
        # Polled often: only an empty answer needs to tell "no new rows" from "no such run".
        if not rows and not self.registry.run_exists(run_id or ""):
            raise NotFoundError(f"run {run_id!r} does not exist")
        return rows

    def stop_run(self, run_id: str) -> dict:
        """Running: save a checkpoint and end as `stopped` (its owner, the app's worker or a CLI command, polls
        for the request at every step). Queued: leave the queue as `stopped`."""
        run = self._settled(run_id)
        if run["status"] == "running":
            self.registry.request_stop(run_id)
        elif run["status"] == "queued":
            self.registry.update_run(run_id, status="stopped", error="stopped before it started")
        else:
            raise StudioError(f"run {run_id} is {run['status']}, not running or queued")
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"]}

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        self._run(run_id)
        return read_log_tail(self.workspace.run_dir(run_id) / "train.log", lines)

    def _run(self, run_id: str) -> dict:
        run = self.registry.get_run(run_id or "")
        if run is None:
            raise NotFoundError(f"run {run_id!r} does not exist")
        return run

    # --- trying models --------------------------------------------------------------

    def fill_mask(self, model: str, text: str, top_k: int = 5) -> list[list[dict]]:
        from .inference import fill_mask

        try:
            folder = resolve_model_dir(self.workspace, model)
            return fill_mask(folder, text, top_k)
        except (ValueError, OSError) as exc:
            raise StudioError(str(exc)) from None

    def mlm_models(self) -> list[dict]:
        """Runs whose model can fill masks: completed (or stopped) pretraining runs with a saved model."""
        return [run_summary(r) for r in self.registry.list_runs()
                if r["kind"] == "pretrain" and r["status"] in ("completed", "stopped")
                and (self.workspace.run_dir(r["id"]) / "model" / "config.json").exists()]

    def close(self) -> None:
        self.runner.close()


# --- plain-data views --------------------------------------------------------------


def corpus_summary(row: dict) -> dict:
    stats = row["stats"]
    return {
        "corpus_id": row["id"], "name": row["name"], "documents": row["documents"],
        "characters": row["characters"], "words": row["words"],
        "empty_lines": stats.get("empty_lines", 0), "duplicate_documents": stats.get("duplicate_documents", 0),
        "encodings": stats.get("encodings", {}), "files": stats.get("files", []),
        "long_documents": stats.get("long_documents", 0),
        # What the cleaning filters removed; {} for a corpus ingested before they existed (issue 16).
        "removed": stats.get("removed", {}), "cleaning": stats.get("cleaning", {}),
    }


def run_summary(run: dict) -> dict:
    import time

    started, finished = run["started_at"], run["finished_at"]
    elapsed = ((finished or time.time()) - started) if started else 0.0
    return {
        "run_id": run["id"], "name": run["name"], "kind": run["kind"], "status": run["status"],
        "step": run["step"], "max_steps": run["max_steps"], "device": run["device"],
        "corpus_id": run["corpus_id"], "dataset_id": run.get("dataset_id"), "parent_id": run["parent_id"],
        "error": run["error"],
        "created_at": run["created_at"], "started_at": started, "finished_at": finished,
        "elapsed_seconds": round(elapsed, 1),
    }


def default_run_name(cfg, source_name: str) -> str:
    if cfg.kind == "finetune":
        return f"{cfg.method} fine-tune on {source_name}"
    base = "continued" if cfg.base_model else cfg.model_size
    if not cfg.base_model and cfg.architecture != "bert":
        base += f" {cfg.architecture}"
    return f"{base} MLM on {source_name}"


def cli_command(config_path: Path) -> str:
    return f"pretrain-studio run {shlex.quote(str(config_path))}"


__all__ = ["Studio", "StudioError", "field_docs"]

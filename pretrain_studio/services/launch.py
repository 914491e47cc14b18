"""Launching: a config from the form's values, checked once; the queue and its order; sweeps; pre-launch reports.

Validation is `config.validate()` (the settings alone) and then `training.intake.check_launchable` (this
machine and workspace); both raise `ConfigError` naming the field, turned here into `StudioError`. Queueing
writes the run (`intake.record_run`) and wakes the device's worker; the caller returns at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ..config import TOKEN_TASK, ConfigError, FinetuneConfig, JobConfig, PretrainConfig
from ..errors import StudioError
from ..model_lookup import resolve_model_dir
from ..registry import new_id
from ..run_owner import this_process
from ..run_states import RunStatus
from ..training.intake import check_launchable, record_run
from ..workspace import Workspace
from .views import run_summary

MAX_SWEEP_RUNS = 36
REPORT_SAMPLE_DOCS = 2000  # documents used for the pre-launch tokenizer report
REPORT_SAMPLE_CHARS = 4_000_000  # ... and at most this much text: one document may hold 1,000,000 characters


class LaunchService:
    """Checks a config, queues it, orders the queue. `wake(device)` tells that device's worker to look."""

    def __init__(self, workspace: Workspace, wake: Callable[[str], None]):
        self.workspace = workspace
        self.registry = workspace.registry
        self.wake = wake

    # --- configs --------------------------------------------------------------------

    def pretrain_config(self, values: dict, check_data: bool = True) -> PretrainConfig:
        """A validated config from a dict of field values; errors name the field. check_data=False skips the
        corpus lookup (the CLI checks the settings before it ingests the files that become the corpus)."""
        return self._checked(PretrainConfig, values, check_data)

    def finetune_config(self, values: dict, check_data: bool = True) -> FinetuneConfig:
        """A validated config, base model checked on disk; check_data=False skips the dataset lookup (as above)."""
        return self._checked(FinetuneConfig, values, check_data)

    def _checked(self, kind: type[JobConfig], values: dict, check_data: bool):
        try:
            cfg = kind.from_dict(values or {}).validate()
            check_launchable(self.workspace, cfg, check_data)
        except ConfigError as exc:
            raise StudioError.of(exc) from None
        return cfg

    # --- queueing -------------------------------------------------------------------

    def start_pretraining(self, values: dict) -> dict:
        """Validate, queue, and return at once: {run_id, status}."""
        return self.enqueue(self.pretrain_config(values))

    def start_finetuning(self, values: dict) -> dict:
        """Validate, queue, and return at once: {run_id, status}."""
        return self.enqueue(self.finetune_config(values))

    def enqueue(self, cfg: JobConfig) -> dict:
        device = _device(cfg)
        run_id = record_run(self.workspace, cfg, device)
        self.wake(device)
        return {"run_id": run_id, "status": self.registry.get_run(run_id)["status"]}

    def create_foreground_run(self, values: dict, role: str = "cli") -> str:
        """For the CLI: a run recorded in the registry but trained by the caller, not the worker. The calling
        process is recorded as its owner (run_owner.py), so an app started meanwhile leaves it running."""
        cfg = self.finetune_config(values) if values.get("kind") == "finetune" else self.pretrain_config(values)
        return record_run(self.workspace, cfg, _device(cfg), status=RunStatus.RUNNING,
                          owner=this_process(role))

    def queue(self) -> list[dict]:
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
        run_ids = [self.enqueue(cfg)["run_id"] for cfg in configs]
        for run_id in run_ids:
            self.registry.set_tags(run_id, [sweep_id])
        return run_ids

    # --- before launch ----------------------------------------------------------------

    def tokenizer_report(self, values: dict) -> dict:
        """Before launch: unknown-token rate, unknown-character rate (characters that become [UNK] among all
        characters), share of CJK characters and share of documents longer than max_seq_length, measured on a
        sample of the corpus with the tokenizer the run would use."""
        cfg = self.pretrain_config(values)
        from ..data.corpus import load_corpus
        from ..data.tokenizer import iter_text_batches, tokenizer_report, train_tokenizer

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

    def parameter_report(self, values: dict) -> dict:
        """Before launch: trainable and total parameters of the model this config would train."""
        cfg = self.finetune_config(values)
        if cfg.task == TOKEN_TASK:
            from ..training.token_finetune import build_token_classifier as build
        else:
            from ..training.finetune import build_classifier as build

        labels = self.registry.get_dataset(cfg.dataset_id)["labels"]
        try:
            _, _, counts = build(cfg, resolve_model_dir(self.workspace, cfg.base_model), self.workspace.root / "tmp",
                                 labels, total_steps=100)
        except ConfigError as exc:
            raise StudioError.of(exc) from None
        return counts


def _device(cfg: JobConfig) -> str:
    """The device a run is queued for ("auto" resolved now, so the queue is per real device)."""
    from ..training.hardware import resolve_device  # torch: loaded when a run is launched, not to list runs

    return resolve_device(cfg.device)

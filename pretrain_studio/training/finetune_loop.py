"""The Trainer setup both fine-tuning recipes share (text classification, finetune.py; token classification,
token_finetune.py): the training arguments, the optimizer, the callbacks (registry, time budget, early
stopping, AdaLoRA's rank budget), and training to the end with resume and the log lines that say how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments

from ..config import FinetuneConfig
from .checkpoints import checkpoint_step, newest_complete_checkpoint
from .distributed import evaluate_before_training
from .reporting import RegistryCallback, RunReporter
from .time_budget import UNBOUNDED_STEPS, TimeBudget, restore_elapsed


class AdaLoraBudget(TrainerCallback):
    """AdaLoRA re-allocates ranks after every optimizer step, while the gradients are still there."""

    def __init__(self, model):
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


class EarlyStopping(EarlyStoppingCallback):
    """The Trainer's early stopping, remembering when and why it ended the run (the Trainer only stops): a
    run that ends before its last step must say so, or it looks like it crashed or was stopped by hand."""

    def __init__(self, patience: int):
        super().__init__(early_stopping_patience=patience)
        self.stopped: dict | None = None

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if self.stopped is None and self.early_stopping_patience_counter >= self.early_stopping_patience:
            self.stopped = {"step": state.global_step, "metric": args.metric_for_best_model,
                            "patience": self.early_stopping_patience,
                            "reason": f"{args.metric_for_best_model} did not improve for "
                                      f"{self.early_stopping_patience} evaluation(s) in a row"}


def training_arguments(cfg: FinetuneConfig, run_dir: Path, rate: float, epochs: float, budget_only: bool,
                       device: str, precision: str, show_progress: bool) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        max_steps=cfg.max_steps if cfg.max_steps > 0 else (UNBOUNDED_STEPS if budget_only else -1),
        num_train_epochs=epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 64),
        learning_rate=rate,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_steps if cfg.warmup_steps < 1 else int(cfg.warmup_steps),
        weight_decay=cfg.weight_decay,
        eval_strategy="steps", eval_steps=cfg.eval_steps,
        # The best checkpoint becomes the final model, so checkpoints are written at every evaluation.
        save_strategy="steps", save_steps=cfg.eval_steps, save_total_limit=2,
        # AdaLoRA prunes ranks as it trains, so an earlier checkpoint no longer fits the model's shapes:
        # its final model is the last step's. Every other method ends on its best checkpoint.
        load_best_model_at_end=cfg.method != "adalora", metric_for_best_model=cfg.early_stopping_metric,
        greater_is_better=cfg.early_stopping_metric != "eval_loss",
        logging_steps=cfg.logging_steps, logging_nan_inf_filter=False,
        seed=cfg.seed, use_cpu=device == "cpu",
        bf16=precision == "bf16", fp16=precision == "fp16",
        report_to=cfg.trackers(), disable_tqdm=not show_progress, dataloader_num_workers=0,
        # Batches of similar lengths pad little. The Trainer then also orders evaluation and prediction by
        # length, so scores are always computed from the label ids that come back with the predictions.
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
    )


def optimizers_for(cfg: FinetuneConfig, model, args: TrainingArguments) -> tuple:
    """(optimizer, scheduler) for the Trainer: SGD with momentum when asked, else the Trainer's AdamW."""
    if cfg.optimizer != "sgd":
        return None, None
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(trainable, lr=args.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay), None


@dataclass
class Callbacks:
    registry: RegistryCallback
    all: list
    budget: TimeBudget | None
    early_stopping: EarlyStopping | None
    resume_from: Path | None


def fine_tuning_callbacks(cfg: FinetuneConfig, reporter: RunReporter, model, args: TrainingArguments) -> Callbacks:
    callback = RegistryCallback(reporter, cfg.effective_batch_size(), throughput_name="examples_per_second",
                                perplexity=False)
    callbacks = [callback]
    resume_from = newest_complete_checkpoint(args.output_dir, log=reporter.log)
    budget = None
    if cfg.time_budget_minutes:
        budget = TimeBudget(cfg.time_budget_minutes, elapsed=restore_elapsed(resume_from), checkpoint_at_end=True)
        reporter.info(time_budget_seconds=budget.budget)
        # Before the registry callback: the evaluation and checkpoint it asks for at the budget's last step then
        # pass the registry's guards (a NaN loss ends the run first, Stop and Cancel clear them, the checkpoint
        # is marked in progress) like any other.
        callbacks.insert(0, budget)
    early_stopping = EarlyStopping(cfg.early_stopping_patience) if cfg.early_stopping_patience else None
    if early_stopping is not None:
        callbacks.append(early_stopping)
    if cfg.method == "adalora":
        callbacks.append(AdaLoraBudget(model))
    return Callbacks(callback, callbacks, budget, early_stopping, resume_from)


def train_to_end(trainer, cfg: FinetuneConfig, reporter: RunReporter, callbacks: Callbacks, budget_only: bool,
                 collator) -> bool:
    """Train (resuming from the newest complete checkpoint; the best checkpoint is loaded at the end) and log how
    the run ended. Returns False when the run was cancelled."""
    if callbacks.budget is not None:  # the learning rate follows the clock (time_budget.py)
        callbacks.budget.drive_schedule(trainer, cfg.warmup_steps)
    resume_from = callbacks.resume_from
    # The steps after the checkpoint (all of them, from step 0, without one) are trained again: their old points
    # leave the curves, so a step is never recorded twice.
    reporter.rewind(checkpoint_step(resume_from) if resume_from is not None else None)
    if resume_from is not None:
        reporter.log(f"resuming from {resume_from.name}")
    else:
        evaluate_before_training(trainer)  # the untrained model: the curves' starting point at step 0
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if callbacks.registry.cancelled:
        reporter.log(f"cancelled at step {trainer.state.global_step}")
        return False
    if callbacks.budget is not None:
        callbacks.budget.report_end(reporter)
    stopping = callbacks.early_stopping
    if stopping is not None and stopping.stopped is not None:
        reporter.info(early_stopped=stopping.stopped)
        bound = "the time budget" if budget_only else trainer.state.max_steps
        reporter.log(f"early stopping at step {stopping.stopped['step']} of {bound}: {stopping.stopped['reason']}")
    reporter.info(best_checkpoint=trainer.state.best_model_checkpoint, best_metric=trainer.state.best_metric,
                  padding_share=collator.padding_share)
    reporter.log(f"padding: {collator.padding_share:.1%} of the training batches' positions"
                 f"{' (length-grouped batches)' if cfg.group_by_length else ''}")
    return True

"""How a training run talks to the outside world: the registry, its log file, and Stop.

`RunReporter` is the run's handle on the registry (metrics, progress, log
lines, stop requests). `RegistryCallback` is the one TrainerCallback that
turns the Trainer's events into registry rows, so the UI, the API and the CLI
all see the same numbers, and a closed browser tab changes nothing. It also
ends a run whose loss is no longer finite, and marks each checkpoint complete
once the Trainer has written it (see checkpoints.py).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from transformers import TrainerCallback

from ..config import UNBOUNDED_STEPS
from ..registry import ENDS_AT_ONCE, STOP
from .checkpoints import mark_complete, unmark

# Trainer log keys -> the metric names the registry, API and plots use.
METRIC_NAMES = {
    "loss": "train_loss",
    "eval_loss": "eval_loss",
    "eval_accuracy": "eval_accuracy",
    "eval_f1": "eval_f1",
    # token classification (training/token_finetune.py): eval_f1 and eval_accuracy repeat the first two
    "eval_entity_f1": "eval_entity_f1",
    "eval_token_accuracy": "eval_token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


class NonFiniteLossError(RuntimeError):
    """Raised when the training (or evaluation) loss becomes NaN or infinite."""


# Losses: a non-finite one ends the run. Other values that are not finite (an fp16 step's inf grad_norm) are left out.
LOSSES = ("train_loss", "eval_loss")


class RunReporter:
    """Writes one run's metrics, progress and log lines; answers "has the user asked to stop?"."""

    def __init__(self, registry, run_id: str, log_path: str | Path):
        self.registry = registry
        self.run_id = run_id
        self.log_path = Path(log_path)
        self.checkpoint_in_progress: Path | None = None  # set while the Trainer writes a checkpoint (see on_save)

    def log(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n"
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.registry.add_metrics(self.run_id, step, values)

    def progress(self, step: int, max_steps: int | None = None) -> None:
        values = {"step": step}
        if max_steps:
            values["max_steps"] = max_steps
        self.registry.update_run(self.run_id, **values)

    def rewind(self, step: int | None) -> None:
        """Training (again) from the checkpoint at `step` (None: from scratch): the rows after it go. Resuming
        already dropped them (Registry.reset_for_resume); this keeps any other way into a run honest too."""
        self.registry.delete_metrics_after(self.run_id, -1 if step is None else step)
        self.registry.update_run(self.run_id, step=step or 0)

    def info(self, **values) -> None:
        self.registry.update_run(self.run_id, info=values)

    def stop_mode(self) -> int:
        """0 = carry on, registry.STOP = checkpoint and end, registry.CANCEL or PRUNE = end and keep nothing."""
        return self.registry.stop_requested(self.run_id)


class RegistryCallback(TrainerCallback):
    """Trainer events -> registry: metrics on every log/eval, progress about once a second, Stop."""

    def __init__(self, reporter: RunReporter, units_per_step, throughput_name: str = "tokens_per_second",
                 perplexity: bool = True):
        self.reporter = reporter
        # Tokens (pretraining) or examples (fine-tuning) per optimizer step: a number, or a function of the moment
        # when the batch changes during the run (the batch-size ramp, curriculum.py).
        self.units_per_step = units_per_step if callable(units_per_step) else (lambda: units_per_step)
        self.throughput_name = throughput_name
        self.perplexity = perplexity  # exp(eval loss) means something for MLM, not for classification
        self._last_progress = 0.0
        self._last_log_time: float | None = None
        self._last_log_step = 0
        self.stopped_by_user = False
        self.cancelled = False

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_log_time = time.time()
        self._last_log_step = state.global_step  # non-zero when resuming
        # A run bounded by its time budget alone has no step count to show (time_budget.UNBOUNDED_STEPS).
        bounded = state.max_steps < UNBOUNDED_STEPS
        self.reporter.progress(state.global_step, state.max_steps if bounded else None)
        self.reporter.log(f"training started at step {state.global_step}"
                          + (f" of {state.max_steps}" if bounded else " (until the time budget is spent)"))

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if now - self._last_progress >= 1.0 or state.global_step == state.max_steps:
            self._last_progress = now
            self.reporter.progress(state.global_step)
        mode = self.reporter.stop_mode()
        if mode in ENDS_AT_ONCE:  # end at once; the caller discards what the run made
            self.cancelled = True
            control.should_save = False
            control.should_evaluate = False
            control.should_training_stop = True
        elif mode == STOP:  # save a checkpoint, then end the loop cleanly
            self.stopped_by_user = True
            control.should_save = True
            control.should_training_stop = True
        if control.should_save or control.should_evaluate:
            # Log the loss first (the Trainer logs before it evaluates or saves), so that a loss that went NaN
            # since the last log ends the run before a diverged model is evaluated or written as a checkpoint.
            control.should_log = True
        if control.should_save and state.is_world_process_zero:  # the process that writes checkpoints
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            unmark(checkpoint)  # a folder written again is not complete until the Trainer is done with it
            self.reporter.checkpoint_in_progress = checkpoint
        return control

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # in a torchrun launch, rank 0 writes and marks checkpoints
            return
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir():
            mark_complete(checkpoint, state.global_step)
            self.reporter.log(f"{checkpoint.name} saved")
        self.reporter.checkpoint_in_progress = None

    def on_evaluate(self, args, state, control, **kwargs):
        # Evaluation time is not training time: restart the throughput clock.
        self._last_log_time, self._last_log_step = time.time(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "train_runtime" in logs:  # the end-of-training summary, not a point on the curve
            return
        values = {METRIC_NAMES[k]: float(v) for k, v in logs.items() if k in METRIC_NAMES and v is not None}
        for name in LOSSES:
            if name in values and not math.isfinite(values[name]):
                # The Trainer would log NaN as 0.0 with its default filter; we turn that off and fail loudly,
                # because a flat zero on the plot looks like a perfect model. Nothing of this log reaches the curves.
                what = "loss" if name == "train_loss" else "evaluation loss"
                raise NonFiniteLossError(f"non-finite {what} at step {state.global_step} ({values[name]})")
        dropped = sorted(k for k, v in values.items() if not math.isfinite(v))
        if dropped:
            self.reporter.log(f"step {state.global_step}: not recorded, not finite: {', '.join(dropped)}")
            values = {k: v for k, v in values.items() if k not in dropped}
        if "eval_loss" in values and self.perplexity:
            values["perplexity"] = math.exp(min(values["eval_loss"], 50.0))
        if "train_loss" in values and self._last_log_time is not None:
            now = time.time()
            steps = state.global_step - self._last_log_step
            if steps > 0 and now > self._last_log_time:
                values[self.throughput_name] = steps * self.units_per_step() / (now - self._last_log_time)
            self._last_log_time, self._last_log_step = now, state.global_step
        if values:
            self.reporter.metrics(state.global_step, values)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            self.reporter.log(f"step {state.global_step}: {shown}")


def keep_tracker_logs_in(trainer, run_dir: Path) -> None:
    """TensorBoard's event files go under the run's folder. transformers' TensorBoardCallback picks its folder only
    at train begin; the step-0 evaluation logs before that, and its writer then falls back to ./runs in the current
    directory (outside the workspace, shared by every run)."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(Path(run_dir) / "tensorboard")

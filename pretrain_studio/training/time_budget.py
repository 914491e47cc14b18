"""A wall-clock budget for a run: the learning rate follows elapsed time, and the run ends at the budget.

With `time_budget_minutes` set, the learning-rate schedule is a function of time, not of steps: linear warm-up
over the first `warmup_steps` steps (or, for a share below 1, that share of the budget), then a linear decay that reaches zero exactly when the budget is spent
(as in Cramming, Geiping & Goldstein 2022, and "How to Train BERT with an Academic Budget", Izsak et al. 2021).
So the run anneals at the budget however fast this machine is, and the last steps are small ones; stopping a
step-scheduled run early would leave it at a high learning rate. `max_steps` and `num_epochs` still bound the
run when not 0.

Elapsed time counts from the first training step and includes evaluations and checkpoints (the user's clock),
but not the downstream checks (downstream.py): they measure the model, and must not take training time from it.
It is saved with each checkpoint (TrainerState's stateful callbacks), so a resumed run continues with the time
left at that checkpoint.
"""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..config import UNBOUNDED_STEPS  # noqa: F401  (the runs import it from here, beside the budget)
from .distributed import broadcast_int



class TimeBudget(TrainerCallback, ExportableState):
    """Measures elapsed training time, ends the run at the budget, and tells the schedule how far it is."""

    def __init__(self, minutes: float, elapsed: float = 0.0, checkpoint_at_end: bool = False):
        self.budget = float(minutes) * 60.0
        # Fine-tuning keeps its best checkpoint as the model, so the step the budget ends on is evaluated and saved
        # there like any other; pretraining evaluates and saves its last step itself.
        self.checkpoint_at_end = checkpoint_at_end
        self.elapsed_before = float(elapsed)  # from the checkpoint this run resumed from
        self._started: float | None = None
        self.excluded = 0.0  # seconds of downstream checks, not counted
        self.ended_by_budget = False
        self._at_step_end: float | None = None  # elapsed at the last step's end, rank 0's in a torchrun launch

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def elapsed(self) -> float:
        running = time.time() - self._started - self.excluded if self._started is not None else 0.0
        return self.elapsed_before + running

    def fraction(self) -> float:
        """Share of the budget spent, 0..1, as of the last step's end: every rank of a launch reads the same value,
        so their learning rates (and curricula) stay equal."""
        elapsed = self._at_step_end if self._at_step_end is not None else self.elapsed()
        return min(1.0, elapsed / self.budget) if self.budget > 0 else 0.0

    def remaining(self) -> float:
        return max(0.0, self.budget - self.elapsed())

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        # Rank 0's clock decides for every rank: ranks whose clocks crossed the budget on different steps would
        # leave the loop apart and hang the others in their next all-reduce.
        self._at_step_end = broadcast_int(round(self.elapsed() * 1000)) / 1000
        if self._at_step_end >= self.budget:
            self.ended_by_budget = True
            control.should_training_stop = True  # the recipe's final evaluation and save follow
            if self.checkpoint_at_end:
                control.should_evaluate = control.should_save = True

    def drive_schedule(self, trainer, warmup_steps: float) -> None:
        """Give `trainer` the clock's learning-rate schedule (time_schedule) in place of its step schedule."""
        trainer.create_optimizer()  # keeps an optimizer passed in (SGD), else builds the Trainer's own
        trainer.lr_scheduler = time_schedule(trainer.optimizer, self, warmup_steps)

    def report_end(self, reporter) -> None:
        """Say in the run's info and log what ended it: the budget, or a step or epoch bound before it."""
        ended = "the time budget" if self.ended_by_budget else "max_steps / num_epochs (before the time budget)"
        reporter.info(ended_by=ended, budget_elapsed_seconds=self.elapsed())
        reporter.log(f"ended by {ended} after {self.elapsed():.0f} s of {self.budget:.0f} s")

    # ExportableState: saved in each checkpoint's trainer_state.json, restored on resume.
    def state(self) -> dict:
        return {"args": {"minutes": self.budget / 60.0, "elapsed": self.elapsed()}, "attributes": {}}


def restore_elapsed(checkpoint) -> float:
    """Seconds of budget already spent at a checkpoint (0 when it has none recorded)."""
    import json
    from pathlib import Path

    if checkpoint is None:
        return 0.0
    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
        return float(state["stateful_callbacks"]["TimeBudget"]["args"]["elapsed"])
    except (OSError, KeyError, TypeError, ValueError):
        return 0.0


def time_schedule(optimizer: torch.optim.Optimizer, budget: TimeBudget, warmup_steps: float):
    """A LambdaLR whose factor is warm-up (whole steps, or a share of the budget below 1), then (1 - share of the
    budget spent)."""

    def factor(step: int) -> float:
        if 0 < warmup_steps < 1:
            warm = min(1.0, budget.fraction() / warmup_steps)
        else:
            warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warm * max(0.0, 1.0 - budget.fraction())

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

"""A run's status: the one vocabulary, and which actions each status allows. Nothing else spells them out.

    queued -> running -> completed | stopped | failed | interrupted | cancelled | pruned
    queued -> stopped | cancelled            (Stop or Cancel before it started)
    stopped | interrupted | failed -> queued (Resume)

The registry writes these; services ask `RunStatus(...).can_stop` and friends instead of keeping their own
tuples, and the UI takes its status filter and its button states from here.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """A run's status. A str, so it compares equal to (and stores as) its plain name."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # a search trial that was behind the others at an evaluation, ended by the search

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """It can still change by itself: waiting in the queue or training."""
        return self in ACTIVE

    @property
    def can_stop(self) -> bool:
        """Stop (keep a checkpoint) and Cancel (keep nothing) apply to a queued or running run."""
        return self in ACTIVE

    can_cancel = can_stop

    @property
    def can_resume(self) -> bool:
        """Resume queues it again, from its newest complete checkpoint."""
        return self in RESUMABLE

    @property
    def can_delete(self) -> bool:
        """Only a run that nothing trains or will train may be deleted."""
        return self not in ACTIVE

    @property
    def has_model(self) -> bool:
        """An ended run that saves its model: completed, or stopped (it saves what it has learnt)."""
        return self in (RunStatus.COMPLETED, RunStatus.STOPPED)

    def can_become(self, other: "RunStatus | str") -> bool:
        return RunStatus(other) in TRANSITIONS[self]


ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINAL = tuple(s for s in RunStatus if s not in ACTIVE)
RESUMABLE = (RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED)
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.STOPPED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(FINAL),
    **{s: frozenset({RunStatus.QUEUED}) for s in RESUMABLE},
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.PRUNED: frozenset(),  # the search's decision: its settings are behind, training them on is waste
}


def names(statuses) -> tuple[str, ...]:
    """Plain names, for SQL and messages."""
    return tuple(s.value for s in statuses)

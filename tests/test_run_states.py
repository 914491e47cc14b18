"""The run status vocabulary (run_states.py) and the registry's typed changes of status."""

from __future__ import annotations

import pytest

from pretrain_studio.registry import Registry
from pretrain_studio.run_states import ACTIVE, FINAL, RESUMABLE, TRANSITIONS, RunStatus


def test_every_status_has_its_transitions_and_each_action_its_statuses():
    assert set(TRANSITIONS) == set(RunStatus)
    assert {s.value for s in FINAL} == {"completed", "stopped", "failed", "interrupted", "cancelled", "pruned"}
    assert not RunStatus.PRUNED.can_resume and not RunStatus.PRUNED.has_model  # a search's verdict, like a cancel
    assert {s for s in RunStatus if s.can_stop} == set(ACTIVE) == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert {s for s in RunStatus if s.can_resume} == set(RESUMABLE)
    assert all(s.can_become(RunStatus.QUEUED) for s in RESUMABLE)  # what Resume does
    assert not RunStatus.COMPLETED.can_become("queued") and not RunStatus.CANCELLED.can_become("running")
    assert {s for s in RunStatus if s.can_delete} == set(FINAL)
    assert RunStatus("stopped") == "stopped" and f"{RunStatus.FAILED}" == "failed"  # stored and shown as names


def _run(registry: Registry, status: str = "queued") -> str:
    registry.create_run("r", name="r", kind="pretrain", config={}, corpus_id=None, parent_id=None, device="cpu",
                        max_steps=10, status=status)
    return "r"


def test_a_queued_run_leaves_the_queue_once_and_only_as_a_queued_run_may(tmp_path):
    registry = Registry(tmp_path / "studio.db")
    run_id = _run(registry)
    with pytest.raises(ValueError, match="cannot become failed"):
        registry.leave_queue(run_id, RunStatus.FAILED)
    assert registry.leave_queue(run_id, RunStatus.CANCELLED)
    run = registry.get_run(run_id)
    assert run["status"] == "cancelled" and run["finished_at"] is not None
    assert not registry.leave_queue(run_id, RunStatus.STOPPED)  # no longer queued: nothing changes
    assert registry.get_run(run_id)["status"] == "cancelled"


def test_tags_are_set_as_a_sorted_set_and_notes_only_when_given(tmp_path):
    registry = Registry(tmp_path / "studio.db")
    run_id = _run(registry, "completed")
    registry.set_tags(run_id, ["b", "a", "b"], "first note")
    registry.set_tags(run_id, ["c"])
    run = registry.get_run(run_id)
    assert (run["tags"], run["notes"]) == (["c"], "first note")

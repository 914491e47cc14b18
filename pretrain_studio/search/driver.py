"""Running a study: ask Optuna for settings, train them as an ordinary run, report its evaluations, tell the outcome.

One `StudyDriver` per study and process (the app's thread, or a `pretrain-studio search` command). A trial is a
run like any other: it goes through the launch checks and the device's queue (or, from the CLI, trains in the
foreground), and the driver follows its curve in the registry. Each new point of the objective is reported to
the trial; when the pruner says the trial is behind, the driver writes why in the run's info and asks the run to
end as `pruned` (registry.PRUNE), so the device goes to the next trial within a step.

Counting is Optuna's: a trial counts toward `n_trials` once it is completed or pruned. A run that was
interrupted (the app was killed), cancelled or failed ends its trial as FAIL, which counts for nothing, and the
study goes on with a new trial. After a restart `reconcile` settles the trials this workspace left running,
by their runs' statuses, so that none is lost or counted twice.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable

from .. import run_owner
from ..errors import StudioError
from ..registry import PRUNE
from ..run_states import RunStatus
from . import storage
from .space import SearchSpec


def finished_elsewhere() -> type[Exception]:
    """Optuna's error for a change to a finished trial (imported when a search runs, not with the app)."""
    from optuna.exceptions import UpdateFinishedTrialError

    return UpdateFinishedTrialError


def driver_key(workspace_name: str) -> str:
    return f"driver {machine()} {workspace_name}"


def check_free(study, workspace_name: str) -> None:
    """StudyBusy when another live process on this machine drives the study for this workspace."""
    other = study.user_attrs.get(driver_key(workspace_name))
    if other and not run_owner.is_me(other) and run_owner.process_alive(other):
        raise StudyBusy(f"study {study.study_name} is being run by {run_owner.describe(other)} on this workspace; "
                        "pause it there first, or join from a workspace of its own")

POLL_SECONDS = 0.5  # how often a driver reads its trial's new points: a pruned trial trains on meanwhile
FAILURES_IN_A_ROW = 3  # a study whose last trials all failed stops: the next ones would most likely fail too


def host_name() -> str:
    return socket.gethostname()


def machine() -> str:
    """Who ran a trial, as the driver tells its own trials from another machine's: run_owner's machine id (a host
    name may change, and two containers may share one)."""
    return run_owner.machine_id()


class StudyBusy(StudioError):
    """Another live process on this machine drives the study for the same workspace (the app, or a command)."""


class StudyDriver:
    """Drives one study until its budget is spent or it is paused, cancelled or closing.

    launch(values, number) -> run_id queues (or starts) a trial's run and raises StudioError when its settings
    are refused; cancel(run_id) cancels one; say(line) hears of each trial's start and end (the CLI prints)."""

    def __init__(self, study_id: str, url: str, registry, workspace_name: str,
                 launch: Callable[[dict, int], str], cancel: Callable[[str], None], closing: threading.Event,
                 say: Callable[[str], None] | None = None, role: str = "app"):
        self.study_id, self.url, self.registry, self.role = study_id, url, registry, role
        self.workspace_name = workspace_name
        self.launch, self.cancel, self.closing = launch, cancel, closing
        self.say = say or (lambda line: None)

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> str:
        """Returns the study's state when the driver left it (running when closing)."""
        study, spec = storage.load_study(self.study_id, self.url, machine(), self.workspace_name)
        self.claim(study)
        try:
            self.reconcile(study, spec)
            return self._loop(study, spec)
        finally:
            self.release(study)

    def _loop(self, study, spec: SearchSpec) -> str:
        while not self.closing.is_set():
            state = storage.state(study)
            if state != "running":
                return state
            storage.fail_stale(study)
            trials = study.get_trials(deepcopy=False)
            done, reason = budget_spent(spec, study, trials)
            if done:
                if not any(t.state.name == "RUNNING" for t in trials):
                    storage.set_state(study, "completed", reason)
                    return "completed"
                # The last trials are another machine's: wait for them (one that dies fails by its heartbeat,
                # and its budget comes back here).
                self.closing.wait(storage.HEARTBEAT_SECONDS)
                continue
            failing = failure_streak(trials, int(study.user_attrs.get(storage.RESUMED_ATTR, 0)))
            if failing:
                storage.set_state(study, "failed", failing)
                return "failed"
            self.run_one(study, spec)
        return storage.state(study)

    def claim(self, study) -> None:
        """One driver per study and workspace: two on one device would train two trials at once, and both settle
        the same trials. Machines with workspaces of their own each drive (that is how a study scales)."""
        check_free(study, self.workspace_name)
        study.set_user_attr(driver_key(self.workspace_name), run_owner.this_process(self.role))

    def release(self, study) -> None:
        try:
            if run_owner.is_me(study.user_attrs.get(driver_key(self.workspace_name))):
                study.set_user_attr(driver_key(self.workspace_name), None)
        except Exception:  # an unreachable storage: the claim lapses with this process anyway
            pass

    def run_one(self, study, spec: SearchSpec) -> None:
        if spec.sampler == "grid":  # the next point no trial has covered (a failed point is tried again)
            point = next_grid_point(spec, study.get_trials(deepcopy=False))
            if point is not None:
                study.enqueue_trial(point)
        trial = storage.ask(study)
        # Who owns it, at once: a trial of nobody's would stay running for ever (it never beat).
        trial.set_user_attr("machine", machine())
        trial.set_user_attr("host", host_name())
        trial.set_user_attr("workspace", self.workspace_name)
        study._storage.record_heartbeat(trial._trial_id)
        run_id = None
        try:
            params = {name: dim.suggest(trial) for name, dim in spec.space.items()}
            run_id = self.launch(spec.trial_values(params), trial.number)
            trial.set_user_attr("run_id", run_id)
        except StudioError as exc:  # these settings cannot be launched (a combination no range check saw)
            self._tell_failed(study, trial, str(RunStatus.FAILED), str(exc))
            return
        except Exception as exc:  # the database, the disk: the trial fails, its run (if any) is cancelled
            if run_id:
                self.cancel(run_id)
            self._tell_failed(study, trial, str(RunStatus.FAILED), f"the search could not start it: {exc}")
            raise
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        self.say(f"trial {trial.number}: run {run_id} ({shown})")
        self.follow(study, spec, trial, run_id)

    def reconcile(self, study, spec: SearchSpec) -> None:
        """Settle the trials this workspace left running (a restart, a killed command) by their runs' status."""
        import optuna

        for frozen in study.get_trials(deepcopy=False):
            attrs = frozen.user_attrs
            if attrs.get("machine") != machine() or attrs.get("workspace") != self.workspace_name:
                continue  # another machine's: its driver settles it, or Optuna's heartbeat fails it
            if frozen.state.name != "RUNNING":
                # Failed by another machine's heartbeat check while this one was down: its run must not train on.
                run = self.registry.get_run(attrs["run_id"]) if attrs.get("run_id") else None
                if frozen.state.name == "FAIL" and run is not None and RunStatus(run["status"]).active:
                    self.cancel(run["id"])
                continue
            trial = optuna.trial.Trial(study, frozen._trial_id)
            run_id = attrs.get("run_id")
            run = self.registry.get_run(run_id) if run_id else None
            if run is None:
                why = "its run was deleted" if run_id else "it stopped before its run was queued"
                self._tell_failed(study, trial, str(RunStatus.INTERRUPTED), why)
                continue
            if run["status"] == RunStatus.RUNNING:
                self.registry.mark_interrupted([run_id])  # its owner may have gone with the app
            self.follow(study, spec, trial, run_id)

    # --- one trial --------------------------------------------------------------------------

    def follow(self, study, spec: SearchSpec, trial, run_id: str) -> None:
        """Report the run's new objective points until it ends, pruning it when the pruner says so; then tell."""
        reported = set(study._storage.get_trial(trial._trial_id).intermediate_values)
        seen, pruning, cancelling, beat = 0, False, False, 0.0
        while not self.closing.is_set():  # closing: the trial stays running; the next start settles it
            run = self.registry.get_run(run_id)
            if run is None:
                self._tell_failed(study, trial, str(RunStatus.CANCELLED), "its run was deleted")
                return
            try:
                for row in self.registry.metrics_since(run_id, seen):
                    seen = row["id"]
                    if row["name"] != spec.objective or row["step"] <= 0 or row["step"] in reported:
                        continue  # step 0: the untrained model, the same for every trial
                    reported.add(row["step"])
                    trial.report(row["value"], row["step"])
                    if not pruning and trial.should_prune():
                        pruning = True
                        self._prune(study, spec, run_id, row["step"], row["value"])
            except finished_elsewhere():  # failed by another machine (this one was silent too long)
                self.cancel(run_id)
                return
            if not RunStatus(run["status"]).active:
                self.conclude(study, spec, trial, run)
                return
            if not cancelling and storage.state(study) == "cancelled":
                cancelling = True
                self.cancel(run_id)
            if time.monotonic() - beat >= storage.HEARTBEAT_SECONDS:
                beat = time.monotonic()
                study._storage.record_heartbeat(trial._trial_id)
                if study._storage.get_trial(trial._trial_id).state.is_finished():
                    self.cancel(run_id)  # failed by another machine while this one did not beat
                    return
            self.closing.wait(POLL_SECONDS)

    def _prune(self, study, spec: SearchSpec, run_id: str, step: int, value: float) -> None:
        others = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)  # the median pruner's
                  if t.state.name == "COMPLETE" and step in t.intermediate_values]
        if spec.pruner == "median" and others:
            reason = (f"{spec.objective} {value:.4g} at step {step} is behind the median of the earlier trials at "
                      f"that step ({statistics.median(others):.4g})")
        else:
            reason = (f"{spec.objective} {value:.4g} at step {step} is not in the best third of the trials that "
                      f"reached that step")
        self.registry.update_run(run_id, info={"pruned": {"step": step, "reason": reason, "study_id": self.study_id}})
        self.registry.request_stop(run_id, PRUNE)

    def conclude(self, study, spec: SearchSpec, trial, run: dict) -> None:
        try:
            self._conclude(study, spec, trial, run)
        except finished_elsewhere():  # another machine failed it meanwhile: its verdict stands
            pass

    def _conclude(self, study, spec: SearchSpec, trial, run: dict) -> None:
        import optuna

        status = run["status"]
        trial.set_user_attr("steps", int(run["step"] or 0))
        trial.set_user_attr("seconds", round((run["finished_at"] or time.time()) - (run["started_at"] or time.time()),
                                             1))
        if status == RunStatus.PRUNED:
            reason = (run["info"].get("pruned") or {}).get("reason", "")
            trial.set_user_attr("status", status)
            trial.set_user_attr("reason", reason)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
            self.say(f"trial {trial.number}: pruned: {reason}")
            return
        value = objective_value(self.registry, run["id"], spec)
        if RunStatus(status).has_model and value is not None:
            trial.set_user_attr("status", status)
            study.tell(trial, value, skip_if_finished=True)
            self.say(f"trial {trial.number}: {status}, {spec.objective} {value:.4f} after {run['step']} steps")
            return
        why = (run["error"] or "").splitlines()[0] if run["error"] else (
            f"it recorded no {spec.objective}" if RunStatus(status).has_model else "")
        self._tell_failed(study, trial, status, why)

    def _tell_failed(self, study, trial, status: str, why: str) -> None:
        import optuna

        try:
            trial.set_user_attr("status", status)
            trial.set_user_attr("reason", why)
            study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except finished_elsewhere():
            return
        self.say(f"trial {trial.number}: {status}{': ' + why if why else ''} (not counted)")


def objective_value(registry, run_id: str, spec: SearchSpec) -> float | None:
    """The best value of the objective the run reached on the validation split after step 0 (step 0 is the model
    before training: the base model's value, not the trial's), or None when it recorded none. A fine-tuning
    trial keeps that checkpoint: its early_stopping_metric is the objective (services/search.py)."""
    low, high = registry.metric_range(run_id, spec.objective, after_step=0)
    return low if spec.direction == "minimize" else high


def budget_spent(spec: SearchSpec, study, trials) -> tuple[bool, str]:
    """(spent, why): n_trials completed or pruned trials, or the time limit used by the trials' training."""
    counted = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    running = sum(t.state.name == "RUNNING" for t in trials)
    budget = storage.trial_budget(study)
    if budget and counted + running >= budget:
        return True, f"{counted} of {budget} trials finished"
    if spec.sampler == "grid" and next_grid_point(spec, trials) is None and not budget:
        return True, "every point of the grid was tried"
    limit = storage.time_limit(study, spec)
    if limit and spent_seconds(trials) >= limit * 60:
        return True, f"the time limit of {limit:g} minutes is spent"
    return False, ""


def next_grid_point(spec: SearchSpec, trials) -> dict | None:
    """The first point of the grid that no completed, pruned or running trial holds, or None when all do."""
    import itertools

    taken = {tuple(sorted(t.params.items())) for t in trials if t.state.name in ("COMPLETE", "PRUNED", "RUNNING")}
    names = list(spec.space)
    for values in itertools.product(*(spec.space[n].values() for n in names)):
        point = dict(zip(names, values))
        if tuple(sorted(point.items())) not in taken:
            return point
    return None


def spent_seconds(trials) -> float:
    """Wall time of the trials' runs so far (a paused study's idle time does not count)."""
    now = time.time()
    total = 0.0
    for t in trials:
        if "seconds" in t.user_attrs:  # its run's own duration: not the time the app was down before it was told
            total += t.user_attrs["seconds"]
        elif t.datetime_start is not None:
            end = t.datetime_complete.timestamp() if t.datetime_complete else now
            total += max(0.0, end - t.datetime_start.timestamp())
    return total


def failure_streak(trials, since: int = 0) -> str:
    """The reason to stop when the last FAILURES_IN_A_ROW finished trials (numbered `since` or later: a resume
    starts a new count) all failed (not interrupted or cancelled: those say nothing about the settings), else ''."""
    ended = [t for t in sorted(trials, key=lambda t: t.number) if t.state.name != "RUNNING" and t.number >= since
             and t.user_attrs.get("status") not in (RunStatus.INTERRUPTED, RunStatus.CANCELLED)]
    last = ended[-FAILURES_IN_A_ROW:]
    if len(last) == FAILURES_IN_A_ROW and all(t.state.name == "FAIL" for t in last):
        return (f"the last {FAILURES_IN_A_ROW} trials failed; the last said: "
                f"{last[-1].user_attrs.get('reason') or 'no reason recorded'}")
    return ""

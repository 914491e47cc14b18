"""Hyperparameter search: start a study, follow it, pause, resume, cancel, promote its best trial.

A study (search/) is checked whole before anything is queued: the space against the settings schema, the
objective against what the template's task records, and the template at the ends of every range against the
launch checks, so a range the setting cannot take is refused naming `space.<setting>.<end>`. Then one driver
thread per study (search/driver.py) asks Optuna for a trial, queues it as an ordinary run tagged with the study
id, follows its curve, prunes it when it is behind, and tells the outcome. From the CLI (`foreground=True`) the
trials train in this process's children instead of the app's queue.

After a restart `recover` starts a driver for every study that was running (not paused), which first settles the
trial the app was training when it went down.
"""

from __future__ import annotations

import threading
import time
import traceback

from ..config import SEQUENCE_TASK, ConfigError
from ..errors import NotFoundError, StudioError
from ..registry import new_id
from ..run_states import RunStatus
from ..search import storage
from ..search.driver import (StudyBusy, StudyDriver, budget_spent, check_free, machine, objective_value,
                             spent_seconds)
from ..search.space import (SearchSpec, corner_configs, objectives_for, parse_spec, suggested_space,
                            template_kind)
from ..workspace import Workspace
from .launch import LaunchService
from .runs import RunService


DRIVER_RETRIES = 3  # a driver that fails this many times in a row (the database, the disk) fails its study
RETRY_SECONDS = 10.0
# The checkpoint a fine-tuning trial keeps is the best by early_stopping_metric: the objective, or its twin.
KEPT_BY = {"eval_entity_f1": "eval_f1", "eval_token_accuracy": "eval_accuracy"}


class SearchService:
    def __init__(self, workspace: Workspace, launch: LaunchService, runs: RunService, foreground: bool = False):
        self.workspace, self.registry = workspace, workspace.registry
        self.launch, self.runs = launch, runs
        self.foreground = foreground  # the CLI: trials train here, not in the app's queue
        self._drivers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.say = None  # a function that hears of each trial's start and end (the CLI sets print)

    # --- starting -------------------------------------------------------------------------

    def start_search(self, config: dict, storage_url: str = "") -> dict:
        """Check a search (see search/space.py for the keys), create its study and start its first trial.
        Returns {"study_id"}. `storage_url`: an SQLAlchemy URL to keep the study in (default: the workspace's
        search.db), so that other machines can join it."""
        spec = self.check_search(config)
        study_id = new_id("study")
        url = storage_url or storage.default_url(self.workspace.root)
        try:
            storage.create_study(study_id, spec, url, creator=f"{machine()} {self.workspace.root}")
        except Exception as exc:  # a URL that names no reachable database, a driver that is not installed
            raise StudioError(f"storage: cannot open {url!r}: {exc}") from None
        # The workspace's own search.db is recorded as "": found again where the workspace is, if it moves.
        self.registry.add_study(study_id, spec.name, storage_url or "")
        if not self.foreground:
            self._drive(study_id)
        return {"study_id": study_id}

    def check_search(self, config: dict) -> SearchSpec:
        """The study's definition, checked, with nothing queued; StudioError names the bad field."""
        if not isinstance(config, dict):
            raise StudioError("config: give the search as a JSON object")
        template, template_run = self._template(config.get("template"))
        build = self._builder(template_kind(template))
        try:  # checked and completed first: its task ("auto" becomes the dataset's) decides the objectives
            template = build(_launch_values(template)).to_dict()
        except StudioError as exc:
            raise StudioError(f"template: {exc}") from None
        try:
            spec = parse_spec(config, template, template_run)
        except ConfigError as exc:
            raise StudioError.of(exc) from None
        if spec.kind == "finetune" and "early_stopping_metric" not in spec.space:
            # A trial keeps its checkpoint best by the objective, so its value is the model it leaves.
            spec.template["early_stopping_metric"] = KEPT_BY.get(spec.objective, spec.objective)
        for where, values in corner_configs(spec):
            try:
                build(_launch_values(values))
            except StudioError as exc:
                raise StudioError(f"{where}: {exc}") from None
        return spec

    def suggested_space(self, template) -> dict:
        """A space to start from for this template (a run id or a launch config): the learning rate around the
        method's default, and its main knob; and the objectives its task records."""
        values, _ = self._template(template)
        kind = template_kind(values)
        try:
            values = self._builder(kind)(_launch_values(values)).to_dict()
        except StudioError as exc:
            raise StudioError(f"template: {exc}") from None
        return {"space": suggested_space(kind, values.get("method") or "full"),
                "objectives": objectives_for(kind, values.get("task") or SEQUENCE_TASK,
                                             values.get("downstream_datasets") or ())}

    def _builder(self, kind: str):
        """The launch check of a kind of run: a validated config from a dict of settings, or StudioError."""
        return self.launch.finetune_config if kind == "finetune" else self.launch.pretrain_config

    def _template(self, template) -> tuple[dict, str | None]:
        if isinstance(template, str) and template.strip():
            run = self.registry.get_run(template.strip())
            if run is None:
                raise StudioError(f"template: run {template!r} does not exist")
            return {k: v for k, v in run["config"].items() if k != "name"}, run["id"]
        if isinstance(template, dict) and template:
            return dict(template), None
        raise StudioError("template: give a run id to copy, or a launch config (the settings of a run)")

    # --- driving --------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """At app start: go on with every study this workspace knows that was running when the app stopped."""
        started = []
        for row in self.registry.list_studies():
            try:
                study = self._study(row["id"])
            except StudioError:  # a database that is not reachable now: the study waits for a resume
                continue
            if storage.state(study) == "running":
                self._drive(row["id"])
                started.append(row["id"])
        return started

    def _drive(self, study_id: str) -> None:
        with self._lock:
            thread = self._drivers.get(study_id)
            if thread is not None and thread.is_alive():
                return  # it looks at the state again before it ends (_drive_quietly)
            thread = threading.Thread(target=self._drive_quietly, args=(study_id,), name=f"search-{study_id}",
                                      daemon=True)
            self._drivers[study_id] = thread
            thread.start()

    def _drive_quietly(self, study_id: str) -> None:
        errors = 0
        while not self._closing.is_set():
            try:
                self.driver(study_id).run()
            except StudyBusy:  # a command on this workspace drives it: the app leaves it alone
                return
            except Exception as exc:  # a locked or unreachable database, a full disk: try again, then give up
                traceback.print_exc()
                errors += 1
                if errors < DRIVER_RETRIES:
                    self._closing.wait(RETRY_SECONDS)
                    continue
                try:
                    storage.set_state(self._study(study_id), "failed", f"the search stopped: {exc}")
                except Exception:
                    pass
                return
            # A resume between the driver's last look and its return would find it alive and start none: look
            # again, under the lock that _drive takes, before this thread ends.
            with self._lock:
                try:
                    again = storage.state(self._study(study_id)) == "running"
                except StudioError:
                    again = False
                if not again or self._closing.is_set():
                    self._drivers.pop(study_id, None)
                    return

    def driver(self, study_id: str) -> StudyDriver:
        return StudyDriver(study_id, self._url(study_id), self.registry, str(self.workspace.root),
                           launch=lambda values, number: self._launch_trial(study_id, values, number),
                           cancel=self._cancel_quietly, closing=self._closing, say=self.say,
                           role="cli" if self.foreground else "app")

    def run_study(self, study_id: str) -> str:
        """Drive a study in this thread until its budget is spent or it is paused or cancelled (the CLI)."""
        return self.driver(study_id).run()

    def ensure_free(self, study_id: str) -> None:
        """StudyBusy when another live process on this machine drives the study for this workspace (the app)."""
        check_free(self._study(study_id), str(self.workspace.root))

    def _launch_trial(self, study_id: str, values: dict, number: int) -> str:
        spec = self._spec(study_id)
        values = {**_launch_values(values), "name": f"{spec.name} #{number}"}
        if self.foreground:
            run_id = self.launch.create_foreground_run({**values, "kind": spec.kind}, role="cli")
            threading.Thread(target=self._train_here, args=(run_id,), name=f"trial-{run_id}", daemon=True).start()
        else:
                run_id = self.launch.enqueue(self._builder(spec.kind)(values))["run_id"]
        self.registry.set_tags(run_id, [study_id])
        self.registry.update_run(run_id, info={"study": {"id": study_id, "trial": number}})
        return run_id

    def _train_here(self, run_id: str) -> None:
        from .. import run_owner
        from ..training.child import train_in_child

        run = self.registry.get_run(run_id)
        with run_owner.Heartbeat(self.registry, run_id, run["owner"]):
            train_in_child(self.workspace, run, self._closing)

    def _cancel_quietly(self, run_id: str) -> None:
        try:
            self.runs.cancel_run(run_id)
        except StudioError:  # it ended meanwhile
            pass

    def close(self) -> None:
        self._closing.set()
        for thread in list(self._drivers.values()):
            thread.join(timeout=5.0)

    # --- control --------------------------------------------------------------------------

    def pause_search(self, study_id: str) -> dict:
        """No new trial starts; the one training now finishes (and counts)."""
        study = self._study(study_id)
        if storage.state(study) != "running":
            raise StudioError(f"study {study_id} is {storage.state(study)}, not running")
        storage.set_state(study, "paused", "paused by the user")
        return self.search_status(study_id)

    def resume_search(self, study_id: str, extra_trials: int = 0) -> dict:
        """Go on with a paused (or completed, failed, interrupted) study, with `extra_trials` more in its budget."""
        study = self._study(study_id)
        extra = extra_trials or 0
        if isinstance(extra, float) and extra == int(extra):
            extra = int(extra)
        if not isinstance(extra, int) or isinstance(extra, bool) or extra < 0:
            raise StudioError(f"extra_trials: give a whole number, 0 or more (got {extra_trials!r})")
        if storage.state(study) == "cancelled":
            raise StudioError(f"study {study_id} was cancelled; start a new search instead")
        spec, trials = self._spec(study_id, study), study.get_trials(deepcopy=False)
        budget = storage.trial_budget(study)
        if extra:  # on top of what has finished when the budget was a time limit alone
            counted = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
            study.set_user_attr(storage.TRIALS_ATTR, (budget or counted) + extra)
        limit = storage.time_limit(study, spec)
        if limit and spent_seconds(trials) >= limit * 60:  # spent: another limit of the same length
            study.set_user_attr(storage.TIMEOUT_ATTR, spent_seconds(trials) / 60 + spec.timeout_minutes)
        study.set_user_attr(storage.RESUMED_ATTR, len(trials))  # earlier failures do not end it again
        storage.set_state(study, "running", "")
        if not self.foreground:
            self._drive(study_id)
        return self.search_status(study_id)

    def cancel_search(self, study_id: str) -> dict:
        """End the study: its queued or training trial is cancelled, no other starts."""
        study = self._study(study_id)
        storage.set_state(study, "cancelled", "cancelled by the user")
        for row in self._trial_rows(study, self._spec(study_id, study)):
            if row["run_id"] and row["status"] in (RunStatus.QUEUED, RunStatus.RUNNING):
                self._cancel_quietly(row["run_id"])
        return self.search_status(study_id)

    def promote_best(self, study_id: str, max_steps: int = 0) -> dict:
        """Queue the best trial's settings again as a run of its own (with `max_steps`, when given, to train
        longer): {"run_id", "config"}."""
        status = self.search_status(study_id)
        best = status["best"]
        if best is None:
            raise StudioError(f"study {study_id} has no completed trial yet")
        spec = self._spec(study_id)
        values = {**_launch_values(spec.trial_values(best["params"])),
                  "name": f"{spec.name}: best trial #{best['number']}"}
        if max_steps:
            values["max_steps"] = int(max_steps)
        queued = self.launch.enqueue(self._builder(spec.kind)(values))
        self.registry.update_run(queued["run_id"], info={"promoted_from": {"study_id": study_id,
                                                                           "trial": best["number"],
                                                                           "run_id": best["run_id"]}})
        return {"run_id": queued["run_id"], "config": values}

    # --- reading --------------------------------------------------------------------------

    def list_studies(self) -> list[dict]:
        out = []
        for row in self.registry.list_studies():
            try:
                status = self.search_status(row["id"])
            except Exception as exc:  # its database is not reachable now: listed, saying so
                out.append({"study_id": row["id"], "name": row["name"], "status": "unreachable", "objective": "",
                            "direction": "", "n_trials": 0, "finished_trials": 0, "created_at": row["created_at"],
                            "best_value": None, "reason": str(exc)})
                continue
            out.append({k: status[k] for k in ("study_id", "name", "status", "objective", "direction", "n_trials",
                                               "finished_trials", "created_at")}
                       | {"best_value": status["best"]["value"] if status["best"] else None})
        return out

    def search_status(self, study_id: str) -> dict:
        """The study and its trials: {"status", "trials": [{"number", "run_id", "params", "value", "status", ...}],
        "best": {"number", "run_id", "params", "value"} or None, and the definition and budget}."""
        study = self._study(study_id)
        spec = self._spec(study_id, study)
        trials = study.get_trials(deepcopy=False)
        rows = self._trial_rows(study, spec, trials)
        best = None
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        if complete:
            top = study.best_trial
            best = {"number": top.number, "run_id": top.user_attrs.get("run_id"), "params": top.params,
                    "value": top.value}
        _, spent_why = budget_spent(spec, study, trials)
        return {
            "study_id": study_id, "name": spec.name, "status": storage.state(study),
            "reason": study.user_attrs.get(storage.REASON_ATTR, "") or spent_why,
            "objective": spec.objective, "direction": spec.direction, "sampler": spec.sampler,
            "pruner": spec.pruner, "n_trials": storage.trial_budget(study), "timeout_minutes": spec.timeout_minutes,
            "seed": spec.seed, "space": {n: d.to_dict() for n, d in spec.space.items()},
            "template_run": spec.template_run, "kind": spec.kind, "storage": self._url(study_id),
            "finished_trials": sum(r["counted"] for r in rows),
            "pruned_trials": sum(r["status"] == "pruned" for r in rows),
            "steps_trained": sum(r["steps"] or 0 for r in rows), "seconds_trained": round(spent_seconds(trials), 1),
            "created_at": self.registry.get_study(study_id)["created_at"],
            "trials": rows, "best": best,
        }

    def search_plots(self, study_id: str) -> dict:
        """Optuna's plotly figures of the study: the objective over trials ("history"), the settings of every
        trial against its objective ("parallel"), and how much each setting mattered ("importance", Optuna's
        default evaluator); None where the study has too few completed trials for one."""
        import warnings

        import optuna.visualization as plots

        study = self._study(study_id)
        complete = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
        figures = {"history": plots.plot_optimization_history, "parallel": plots.plot_parallel_coordinate,
                   "importance": plots.plot_param_importances}
        out = {}
        for key, plot in figures.items():
            if complete < (2 if key == "importance" else 1):
                out[key] = None
                continue
            try:
                with warnings.catch_warnings():  # "importances will be equal" when every trial scored the same
                    warnings.simplefilter("ignore", UserWarning)
                    out[key] = plot(study)
            except (ValueError, RuntimeError):  # e.g. importances of settings that never varied
                out[key] = None
        return out

    def _trial_rows(self, study, spec: SearchSpec, trials=None) -> list[dict]:
        rows = []
        for t in trials if trials is not None else study.get_trials(deepcopy=False):
            run_id = t.user_attrs.get("run_id")
            run = self.registry.get_run(run_id) if run_id else None
            if t.state.name == "RUNNING":
                status = run["status"] if run else "running"
                value = objective_value(self.registry, run_id, spec) if run else None
            else:
                # A trial failed by Optuna's heartbeat (its driver went silent) has no status of ours.
                status = t.user_attrs.get("status") or ("interrupted" if t.state.name == "FAIL" else "completed")
                value = t.value
            steps = t.user_attrs.get("steps", run["step"] if run else None)
            seconds = t.user_attrs.get("seconds")
            if seconds is None and run and run["started_at"]:
                seconds = round((run["finished_at"] or time.time()) - run["started_at"], 1)
            rows.append({"number": t.number, "run_id": run_id, "params": t.params, "value": value, "status": status,
                         "counted": t.state.name in ("COMPLETE", "PRUNED"), "steps": steps, "seconds": seconds,
                         "reason": t.user_attrs.get("reason", ""), "host": t.user_attrs.get("host", ""),
                         "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())}})
        return rows

    def _study(self, study_id: str):
        url = self._url(study_id)
        try:
            study, _ = storage.load_study(study_id, url)
        except KeyError:
            raise NotFoundError(f"study {study_id} is not in its storage") from None
        except StudioError:
            raise
        except Exception as exc:  # sqlalchemy's errors: a database that is down, a URL that is wrong
            raise StudioError(f"study {study_id}: its storage {url} cannot be read now: {exc}") from None
        return study

    def _spec(self, study_id: str, study=None) -> SearchSpec:
        study = study or self._study(study_id)
        return SearchSpec.from_dict(study.user_attrs[storage.SPEC_ATTR])

    def _url(self, study_id: str) -> str:
        row = self.registry.get_study(study_id)
        if row is None:
            raise NotFoundError(f"study {study_id!r} does not exist in this workspace")
        return row["storage"] or storage.default_url(self.workspace.root)

    def join_study(self, study_id: str, storage_url: str) -> None:
        """Make a study kept in another storage (another machine's database) known to this workspace."""
        if not storage.study_exists(study_id, storage_url):
            raise StudioError(f"study: {study_id!r} is not in {storage_url}")
        study, spec = storage.load_study(study_id, storage_url)
        self.registry.add_study(study_id, spec.name, storage_url)
        if self.registry.get_study(study_id)["storage"] != storage_url:
            self.registry.set_study_storage(study_id, storage_url)


def _launch_values(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "kind"}

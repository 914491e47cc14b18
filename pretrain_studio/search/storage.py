"""Where a study lives: Optuna's RDB storage, the workspace's `search.db` unless the user gives a database URL.

Everything about a study is kept there, not in the registry: its definition (the SearchSpec, a user attribute),
its state (running, paused, cancelled, completed, failed), its budget and its trials with their run ids. So a
second machine that runs `pretrain-studio search --study ID --storage URL` against the same database (any
SQLAlchemy URL: PostgreSQL, MySQL) sees, samples and counts the same study, and a pause or cancel from either
side reaches both. The registry only remembers which studies this workspace knows and in which storage.

Optuna's heartbeat marks a trial whose driver went silent (a machine that died) as failed after GRACE_SECONDS,
so its budget goes to the others.
"""

from __future__ import annotations

import threading
import zlib
import warnings
from pathlib import Path

from .space import SearchSpec

STATES = ("running", "paused", "cancelled", "completed", "failed")
SPEC_ATTR, STATE_ATTR, REASON_ATTR, TRIALS_ATTR = "spec", "state", "state_reason", "n_trials"
RESUMED_ATTR = "resumed_at_trial"  # failures before a resume do not count toward its failure streak
TIMEOUT_ATTR = "timeout_minutes"  # the time limit now (a resume of a study that spent it gives it another)
CREATOR_ATTR = "created_by"  # the machine and workspace that started the study
HEARTBEAT_SECONDS = 10  # a driver beats for its running trial this often ...
GRACE_SECONDS = 120  # ... and a trial without a beat for this long is failed by the next driver that looks

_storages: dict[str, object] = {}
_lock = threading.Lock()


def default_url(workspace_root: Path) -> str:
    return f"sqlite:///{Path(workspace_root) / 'search.db'}"


def storage(url: str):
    """One RDBStorage per URL for this process (its connection pool is shared by the drivers' threads)."""
    import optuna

    with _lock:
        if url not in _storages:
            # SQLite: wait for a writer (another driver, the CLI) instead of failing with "database is locked".
            engine = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else None
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5: the pin keeps it still
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                _storages[url] = optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                                            heartbeat_interval=HEARTBEAT_SECONDS,
                                                            grace_period=GRACE_SECONDS)
        return _storages[url]


def create_study(study_id: str, spec: SearchSpec, url: str, creator: str = ""):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage(url), study_name=study_id, direction=spec.direction,
                                sampler=spec.sampler_object(), pruner=spec.pruner_object())
    study.set_user_attr(SPEC_ATTR, spec.to_dict())
    study.set_user_attr(TRIALS_ATTR, spec.n_trials)
    study.set_user_attr(STATE_ATTR, "running")
    study.set_user_attr(TIMEOUT_ATTR, spec.timeout_minutes)
    study.set_user_attr(CREATOR_ATTR, creator)
    for params in spec.first_trials:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


def load_study(study_id: str, url: str, machine: str = "", workspace: str = ""):
    """(the Optuna study with its own sampler and pruner, its spec); KeyError when the storage has no such study.

    The sampler's seed moves on with the trials already made (a study loaded again after a pause, a restart or by
    a second machine must not draw its first settings again), and by machine for a study joined from elsewhere:
    a study run in one go from its start draws exactly what its seed says."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = storage(url)
    internal = store.get_study_id_from_name(study_id)
    attrs = store.get_study_user_attrs(internal)
    spec = SearchSpec.from_dict(attrs[SPEC_ATTR])
    offset = len(store.get_all_trials(internal, deepcopy=False))
    me = f"{machine} {workspace}"
    if machine and attrs.get(CREATOR_ATTR) and attrs[CREATOR_ATTR] != me:
        offset += zlib.crc32(me.encode()) % 100_000
    study = optuna.load_study(study_name=study_id, storage=store, sampler=spec.sampler_object(offset),
                              pruner=spec.pruner_object())
    return study, spec


def study_exists(study_id: str, url: str) -> bool:
    try:
        storage(url).get_study_id_from_name(study_id)
    except KeyError:
        return False
    return True


def state(study) -> str:
    return study.user_attrs.get(STATE_ATTR, "running")


def set_state(study, value: str, reason: str = "") -> None:
    study.set_user_attr(STATE_ATTR, value)
    study.set_user_attr(REASON_ATTR, reason)


def time_limit(study, spec: SearchSpec) -> float:
    """Minutes of training the trials may take in all (0 = no limit)."""
    return float(study.user_attrs.get(TIMEOUT_ATTR, spec.timeout_minutes) or 0)


def trial_budget(study) -> int:
    """Trials to finish (completed or pruned); 0 = as many as the time limit allows. Resume can raise it."""
    return int(study.user_attrs.get(TRIALS_ATTR, 0))


def fail_stale(study) -> None:
    """Fail the trials whose driver stopped beating (another machine died mid-trial): their budget is free."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def ask(study):
    """A new trial. Optuna warns that its heartbeat is meant for Study.optimize; the driver beats for its trials
    itself (driver.follow), which is what optimize's thread does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return study.ask()

"""What a study searches, checked before anything is queued: the space, the objective, the sampler, the pruner, the budget.

`parse_spec(config, template)` turns the `start_search` config (the Names of issue 19) into a `SearchSpec`, or
raises `ConfigError` naming the field ("space.learning_rate.low", "objective", "n_trials"). The space comes from
the settings schema: only fields declared `searchable=True` in config.py may vary, each typed by its field (an
int range suggests whole numbers, a str setting needs a list of choices). The spec is plain data
(`to_dict`/`from_dict`): it is stored with the study in Optuna's storage, so any machine that joins the study
samples the same space the same way.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields

from ..config import CONFIG_KINDS, SEQUENCE_TASK, TOKEN_TASK, ConfigError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "successive_halving", "none")
DIRECTIONS = ("minimize", "maximize")
DOWNSTREAM_PREFIX = "downstream_accuracy/"  # training/downstream.py's metric names: + the dataset id
# The validation metrics each kind of run records (training/reporting.py); a search never looks at the test split.
OBJECTIVES = {
    "pretrain": ("eval_loss", "perplexity", "eval_accuracy"),
    SEQUENCE_TASK: ("eval_accuracy", "eval_f1", "eval_loss"),
    TOKEN_TASK: ("eval_entity_f1", "eval_token_accuracy", "eval_loss"),
}
LOWER_IS_BETTER = ("eval_loss", "perplexity")
# The first trials of a median pruner are never pruned: the median needs a few curves to mean something.
MEDIAN_STARTUP_TRIALS = 3
SUCCESSIVE_HALVING_REDUCTION = 3  # keep the best third at each rung
# Suggested spaces per method: the rates bracket auto_defaults.METHOD_LEARNING_RATES by a decade or more.
SUGGESTED = {
    "pretrain": {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "warmup_steps": {"low": 0, "high": 100,
                                                                                             "step": 10}},
    "full": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "batch_size": {"choices": [8, 16, 32]}},
    "lora": {"learning_rate": {"low": 1e-4, "high": 5e-3, "log": True}, "lora_r": {"choices": [4, 8, 16, 32]}},
    "adalora": {"learning_rate": {"low": 1e-4, "high": 5e-3, "log": True}, "adalora_init_r": {"choices": [8, 12, 16]}},
    "ia3": {"learning_rate": {"low": 1e-3, "high": 3e-2, "log": True}},
    "top_layers": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True}, "top_layers": {"low": 1, "high": 4}},
    "adapter": {"learning_rate": {"low": 1e-4, "high": 5e-3, "log": True}, "adapter_size": {"choices": [16, 32, 64]}},
}
RANGE_KEYS = ("low", "high", "log", "step")
MAX_GRID_POINTS = 10_000  # a grid is tried whole: more points than this is a mistake (a tiny step), not a plan


@dataclass(frozen=True)
class Dimension:
    """One setting's range: choices, or low..high (log scale, or in steps of `step`), typed by its field."""

    name: str
    kind: str  # "int", "float" or "choices"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        """This setting's value for an Optuna trial."""
        if self.kind == "choices":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> list:
        """Every value, for the grid sampler (which needs a finite list)."""
        if self.kind == "choices":
            return list(self.choices)
        if self.kind == "float" and self.step is None:
            raise ConfigError(f"space.{self.name}", "the grid sampler needs a list of choices or a step for "
                                                    "a range of decimals")
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        if count > MAX_GRID_POINTS:
            raise ConfigError(f"space.{self.name}.step", f"{count:,} values is more than a grid can try "
                                                        f"({MAX_GRID_POINTS:,} at most): give a larger step")
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 12) for v in values]

    def extremes(self) -> list:
        """The values a launch check tries: the ends of a range, every choice."""
        return list(self.choices) if self.kind == "choices" else [self.low, self.high]

    def to_dict(self) -> dict:
        if self.kind == "choices":
            return {"choices": list(self.choices)}
        out = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class SearchSpec:
    """A study's definition. `template` is a launch config dict (with its kind); `template_run` the run it came
    from, when it came from one."""

    name: str
    kind: str
    template: dict
    space: dict[str, Dimension]
    objective: str
    direction: str
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 12
    timeout_minutes: float = 0.0
    seed: int = 0
    template_run: str | None = None
    grid_size: int | None = field(default=None)
    first_trials: list[dict] = field(default_factory=list)  # settings tried first (the ones a user trusts now)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["space"] = {name: dim.to_dict() for name, dim in self.space.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSpec":
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        template_cls = CONFIG_KINDS[data["kind"]]
        values["space"] = {name: dimension(name, raw, template_cls) for name, raw in data["space"].items()}
        return cls(**values)

    def sampler_object(self, seed_offset: int = 0):
        """The sampler; `seed_offset` moves its seed on for a study loaded again (storage.load_study)."""
        import optuna

        seed = self.seed + seed_offset
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.sampler == "grid":
            # The driver enqueues every point of the grid itself (driver.next_grid_point: a failed point is tried
            # again, a covered one never), so the sampler is never asked; Optuna's GridSampler would also stop the
            # study from inside tell, which only works within Study.optimize.
            return optuna.samplers.RandomSampler(seed=seed)
        # TPE models the good and the bad trials once it has a few: Optuna's default waits for 10, most of a
        # small study's budget, so a third of the budget (at least 2, at most 10) is sampled at random first.
        startup = max(2, min(10, (self.n_trials or 30) // 3))
        with warnings.catch_warnings():  # multivariate TPE is "experimental" in Optuna 5 (and its better default)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True)

    def pruner_object(self):
        import optuna

        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=0)
        if self.pruner == "successive_halving":
            # Rungs at the first evaluation, then 3x, 9x ... its steps: a trial must be in the best third to go on.
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=int(self.template.get("eval_steps") or 1),
                                                          reduction_factor=SUCCESSIVE_HALVING_REDUCTION)
        return optuna.pruners.NopPruner()

    def trial_values(self, params: dict) -> dict:
        """The launch config of a trial: the template with the sampled settings."""
        return {**self.template, **params}


def parse_spec(config: dict, template: dict, template_run: str | None = None) -> SearchSpec:
    """Check a start_search config against its (resolved) template; every error names its field."""
    if not isinstance(config, dict):
        raise ConfigError("config", "give the search as a JSON object: name, template, space, objective, ...")
    known = {"name", "template", "space", "objective", "direction", "sampler", "pruner", "n_trials",
             "timeout_minutes", "seed", "first_trials"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key; a search config has {', '.join(sorted(known))}")
    kind = template_kind(template)
    template_cls = CONFIG_KINDS[kind]
    space_raw = config.get("space")
    if not isinstance(space_raw, dict) or not space_raw:
        raise ConfigError("space", "give at least one setting to search, e.g. "
                                   '{"learning_rate": {"low": 1e-5, "high": 1e-3, "log": true}}')
    space = {name: dimension(name, raw, template_cls) for name, raw in space_raw.items()}
    method = space["method"].choices if "method" in space else (template.get("method") or "full",)
    for name in space:
        methods = _declared(template_cls, name)["methods"]
        if kind == "finetune" and methods and not set(method) & set(methods):
            raise ConfigError(f"space.{name}", f"applies only to method {', '.join(methods)}; the template's method is "
                                               f"{', '.join(method)}")
    task = template.get("task") or SEQUENCE_TASK
    objective = str(config.get("objective") or default_objective(kind, task))
    _check_objective(objective, kind, task, template)
    direction = str(config.get("direction") or ("minimize" if objective in LOWER_IS_BETTER else "maximize"))
    if direction not in DIRECTIONS:
        raise ConfigError("direction", f"choose one of {', '.join(DIRECTIONS)}")
    better = "minimize" if objective in LOWER_IS_BETTER else "maximize"
    if direction != better:
        raise ConfigError("direction", f"{objective} is better when {'lower' if better == 'minimize' else 'higher'}: "
                                       f"{better} it")
    sampler = _choice(config, "sampler", SAMPLERS, "tpe")
    pruner = _choice(config, "pruner", PRUNERS, "median")
    n_trials = _number(config, "n_trials", 12, whole=True)
    timeout = _number(config, "timeout_minutes", 0.0)
    seed = _number(config, "seed", 0, whole=True)
    grid_size = None
    if sampler == "grid":  # n_trials 0: the whole grid
        grid_size = math.prod(len(d.values()) for d in space.values())
        if grid_size > MAX_GRID_POINTS:
            raise ConfigError("space", f"the grid has {grid_size:,} points, more than {MAX_GRID_POINTS:,}: give fewer "
                                       "values, or use the tpe or random sampler")
        n_trials = min(n_trials, grid_size) if n_trials else grid_size
    if n_trials == 0 and timeout == 0:
        raise ConfigError("n_trials", "a budget of 0 runs nothing: give a number of trials, or a time limit in "
                                      "timeout_minutes")
    first = _first_trials(config.get("first_trials"), space, sampler)
    name = str(config.get("name") or f"search {objective}")
    return SearchSpec(name=name, kind=kind, template=template, space=space, objective=objective, direction=direction,
                      sampler=sampler, pruner=pruner, n_trials=n_trials, timeout_minutes=float(timeout), seed=seed,
                      template_run=template_run, grid_size=grid_size, first_trials=first)


def _first_trials(raw, space: dict[str, Dimension], sampler: str) -> list[dict]:
    """Settings to try before the sampler's own: each a {setting: value} inside the space."""
    if not raw:
        return []
    if sampler == "grid":
        raise ConfigError("first_trials", "the grid sampler tries every point of the grid itself")
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError("first_trials", 'give a list of settings, e.g. [{"learning_rate": 5e-4}]')
    for number, trial in enumerate(raw):
        for name, value in trial.items():
            where = f"first_trials[{number}].{name}"
            dim = space.get(name)
            if dim is None:
                raise ConfigError(where, "not in the space")
            if dim.kind == "choices" and value not in dim.choices:
                raise ConfigError(where, f"{value!r} is not one of the choices")
            if dim.kind != "choices" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                          or not dim.low <= value <= dim.high):
                raise ConfigError(where, f"give a number from {dim.low:g} to {dim.high:g} (got {value!r})")
            if dim.kind == "int" and value != int(value):
                raise ConfigError(where, f"{name} is a whole number (got {value!r})")
            if dim.step and abs((value - dim.low) / dim.step - round((value - dim.low) / dim.step)) > 1e-9:
                raise ConfigError(where, f"{value!r} is not on the range's steps of {dim.step:g} from {dim.low:g}")
    return [dict(t) for t in raw]


def template_kind(template: dict) -> str:
    """pretrain or finetune: its `kind`, else told by its data (a dataset_id is a fine-tuning's)."""
    return template.get("kind") or ("finetune" if "dataset_id" in template else "pretrain")


def dimension(name: str, raw, template_cls) -> Dimension:
    """One entry of the space, checked against the field it varies."""
    where = f"space.{name}"
    known = {f.name: f for f in fields(template_cls)}
    if name not in known:
        raise ConfigError(where, "unknown setting")
    if not _declared(template_cls, name).get("searchable"):
        allowed = ", ".join(searchable_settings(template_cls))
        raise ConfigError(where, f"not a setting a search may vary; these are: {allowed}")
    if not isinstance(raw, dict):
        raise ConfigError(where, 'give {"low": ..., "high": ...} or {"choices": [...]}')
    kind = str(known[name].type)
    if "choices" in raw:
        extra = sorted(set(raw) - {"choices"})
        if extra:
            raise ConfigError(f"{where}.{extra[0]}", "give choices or a range, not both")
        choices = raw["choices"]
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"{where}.choices", "give a non-empty list of values")
        if any(not isinstance(c, (str, int, float, bool)) for c in choices):
            raise ConfigError(f"{where}.choices", "values must be numbers, words or true/false")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}.choices", "a value is listed twice")
        return Dimension(name, "choices", choices=tuple(choices))
    unknown = sorted(set(raw) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key; a range has {', '.join(RANGE_KEYS)}, or give choices")
    if kind not in ("int", "float"):
        raise ConfigError(where, f"a {kind} setting takes a list of choices, not a range")
    for key in ("low", "high"):
        value = raw.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key}", f"give a number (got {value!r})")
        if kind == "int" and value != int(value):
            raise ConfigError(f"{where}.{key}", f"{name} is a whole number (got {value!r})")
    low, high = raw["low"], raw["high"]
    if low >= high:
        raise ConfigError(f"{where}.low", f"low ({low:g}) must be below high ({high:g})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log", f"give true or false (got {log!r})")
    step = raw.get("step")
    if log and low <= 0:
        raise ConfigError(f"{where}.low", f"a log range must be above 0 (got low {low:g})")
    if step is not None:
        if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
            raise ConfigError(f"{where}.step", f"give a step above 0 (got {step!r})")
        if log:
            raise ConfigError(f"{where}.step", "a log range has no step")
        if kind == "int" and step != int(step):
            raise ConfigError(f"{where}.step", f"{name} is a whole number (got step {step!r})")
    return Dimension(name, kind, float(low) if kind == "float" else int(low),
                     float(high) if kind == "float" else int(high), log, step)


def searchable_settings(template_cls) -> list[str]:
    return [f.name for f in fields(template_cls) if f.metadata.get("checks", {}).get("searchable")]


def suggested_space(kind: str, method: str = "full") -> dict:
    """A starting space for a template: the learning rate around the method's default, and its main knob."""
    return SUGGESTED["pretrain" if kind == "pretrain" else method if method in SUGGESTED else "full"]


def default_objective(kind: str, task: str = SEQUENCE_TASK) -> str:
    return "eval_loss" if kind == "pretrain" else OBJECTIVES[task][0]


def objectives_for(kind: str, task: str = SEQUENCE_TASK, downstream=()) -> list[str]:
    names = OBJECTIVES["pretrain" if kind == "pretrain" else task]
    return [*names, *(f"{DOWNSTREAM_PREFIX}{d}" for d in downstream)] if kind == "pretrain" else list(names)


def corner_configs(spec: SearchSpec) -> list[tuple[str, dict]]:
    """(field path, launch config) per extreme of each dimension, the others at the template's values: what the
    launch checks see before the study starts, so that a range the setting cannot take is refused now."""
    out = []
    for name, dim in spec.space.items():
        keys = ("low", "high") if dim.kind != "choices" else ("choices",) * len(dim.choices)
        for key, value in zip(keys, dim.extremes()):
            out.append((f"space.{name}.{key}", spec.trial_values({name: value})))
    return out


def _check_objective(objective: str, kind: str, task: str, template: dict) -> None:
    allowed = objectives_for(kind, task, template.get("downstream_datasets") or ())
    if objective in allowed:
        return
    what = "pretraining" if kind == "pretrain" else "token classification" if task == TOKEN_TASK else "fine-tuning"
    test = " (a search never looks at the test split)" if objective.startswith(("test_", "validation_")) else ""
    raise ConfigError("objective", f"{what} records {', '.join(allowed)} on its validation split; {objective!r} is "
                                   f"not one of them{test}")


def _declared(template_cls, name: str) -> dict:
    return next((f.metadata.get("checks") or {} for f in fields(template_cls) if f.name == name), {}) or {
        "methods": (), "searchable": False}


def _choice(config: dict, key: str, allowed: tuple, default: str) -> str:
    value = str(config.get(key) or default).lower()
    if value not in allowed:
        raise ConfigError(key, f"choose one of {', '.join(allowed)} (got {config.get(key)!r})")
    return value


def _number(config: dict, key: str, default, whole: bool = False):
    value = config.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(key, f"give a number (got {value!r})")
    if whole and value != int(value):
        raise ConfigError(key, f"give a whole number (got {value!r})")
    if value < 0:
        raise ConfigError(key, f"must be at least 0 (got {value!r})")
    return int(value) if whole else float(value)

"""How a setting is declared, once, and what follows from the declaration.

A setting is a dataclass field of a job config (config.py): its type annotation, its default, its docstring
(the help text of the form, the CLI and the README tables: `field_docs`), and `setting(...)` bounds:

    warmup_steps: int = setting(20, minimum=0)
    '''Linear warm-up steps.'''

From that declaration come the coercion of form and JSON values (`JobConfig.from_dict`), the type, bound and
choice checks (`check_declared`, one pass, each error naming the field), the CLI flags (cli.py) and the
settings tables of both READMEs (`settings_table`, kept in step by tests/test_settings_tables.py). Rules that
tie several settings together stay in each config's `validate()`.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import textwrap
from dataclasses import MISSING, Field, asdict, field, fields
from pathlib import Path

from .errors import UserError

TYPE_WORDS = {"list[str]": "a list of ids"}  # how a coercion error names a type without a key of its own
TYPE_KEYS = {"int": "error.not_whole_number", "float": "error.not_a_number"}


class ConfigError(UserError):
    """A setting is invalid; `field` names it so every front door can point at it. Give a message, or an
    errors.MESSAGES key and its parameters (the field is one of them)."""

    def __init__(self, field_name: str, message: str = "", *, key: str = "", **params):
        if key:
            super().__init__(key=key, field=field_name, **params)
        else:
            super().__init__(f"{field_name}: {message}")
        self.field = field_name


def setting(default=MISSING, *, default_factory=MISSING, minimum=None, maximum=None, above=None, below=None,
            share: bool = False, choices=None, noun: str = "", methods: tuple[str, ...] = (), why: str = "",
            searchable: bool = False) -> Field:
    """A config field with its checks. minimum, maximum: the least and the most allowed; above: values must be greater;
    below: values must be smaller; share: a share of the run, 0 to 1; choices: the allowed values (`noun` names
    them in the message: "unknown preset 'x'"); methods: checked only when the config's method is one of these;
    why: said after a bound's message; searchable: a hyperparameter search may vary it (search/space.py). Ids,
    names, devices, budgets and cadences are not: a trial that changed them would answer another question."""
    checks = {"minimum": minimum, "maximum": maximum, "above": above, "below": below, "share": share, "choices": choices,
              "noun": noun, "methods": tuple(methods), "why": why, "searchable": searchable}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"checks": checks})
    return field(default=default, metadata={"checks": checks})


def check_declared(cfg) -> None:
    """Check every field against its declaration, in declaration order; raise ConfigError for the first wrong one."""
    for f in fields(cfg):
        checks = f.metadata.get("checks")
        if not checks or (checks["methods"] and getattr(cfg, "method", None) not in checks["methods"]):
            continue
        value, name = getattr(cfg, f.name), f.name
        kind = str(f.type)
        if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(name, key="error.not_whole_number", value=repr(value))
        if kind == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                or not math.isfinite(value)):
            raise ConfigError(name, key="error.not_a_number", value=repr(value))
        got = shown(value) if kind in ("int", "float") else repr(value)
        if checks["above"] is not None and value <= checks["above"]:
            raise ConfigError(name, key="error.must_be_greater", min=shown(checks["above"]), got=got, why=checks["why"])
        if checks["minimum"] is not None and value < checks["minimum"]:
            raise ConfigError(name, key="error.must_be_at_least", min=shown(checks["minimum"]), got=got,
                              why=checks["why"])
        if checks["maximum"] is not None and value > checks["maximum"]:
            raise ConfigError(name, key="error.must_be_at_most", max=shown(checks["maximum"]), got=got)
        if checks["below"] is not None and value >= checks["below"]:
            raise ConfigError(name, key="error.must_be_below", max=shown(checks["below"]))
        if checks["share"] and not 0 <= value <= 1:
            raise ConfigError(name, key="error.share_of_run")
        if checks["choices"] is not None and value not in checks["choices"]:
            listed = ", ".join(checks["choices"])
            if checks["noun"]:
                raise ConfigError(name, key="error.unknown_choice", noun=checks["noun"], value=repr(value), choices=listed)
            raise ConfigError(name, key="error.choose_one_of", choices=listed)


def declared_checks(cls, name: str) -> dict:
    """The checks a field was declared with ({} when none), e.g. for a form's slider bounds."""
    return next((f.metadata.get("checks", {}) for f in fields(cls) if f.name == name), {})


class JobConfig:
    """JSON round trip shared by the job configs (plain dataclasses that set `kind`)."""

    kind = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "JobConfig":
        """Build from a JSON-style dict; unknown keys are an error (a typo must not be silently ignored)."""
        data = dict(data)
        data.pop("kind", None)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; known settings are {', '.join(known)}")
        return cls(**{key: coerce(key, value, known[key].type) for key, value in data.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def field_docs(cls) -> dict[str, str]:
    """Field name -> its docstring (the string literal under the field, on one line), for README and UI help."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # the launch settings' fields are declared on a base class
        if klass is object or "__dataclass_fields__" not in vars(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = " ".join(str(nxt.value.value).split())  # a docstring may wrap lines
    return docs


def settings_table(cls, required: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(key, default as the README shows it, help text) per setting declared on `cls` itself (not on a base
    class: the shared launch settings have a table of their own), in declaration order: the rows of a README
    settings table, whose meaning may say more after the help text. `required` fields show "(required)"."""
    docs = field_docs(cls)
    rows = []
    for f in fields(cls):
        if f.name not in vars(cls).get("__annotations__", {}):
            continue
        if f.name in required:
            default = "(required)"
        else:
            value = f.default_factory() if f.default_factory is not MISSING else f.default
            default = f"`{json.dumps(value) if isinstance(value, (bool, list)) or value == '' else value}`"
        rows.append((f.name, default, docs[f.name]))
    return rows


def coerce(key: str, value, type_name):
    """Turn JSON/form values into the field's type, naming the field when that is impossible."""
    type_name = str(type_name)
    try:
        if type_name == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if type_name == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if type_name == "str":
            return "" if value is None else str(value)
        if type_name == "list[str]":  # a JSON list, or comma-separated text (a CLI flag, a form box)
            if value is None:
                return []
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return [str(part).strip() for part in value if str(part).strip()]
    except (TypeError, ValueError):
        if type_name in TYPE_KEYS:
            raise ConfigError(key, key=TYPE_KEYS[type_name], value=repr(value)) from None
        raise ConfigError(key, f"{value!r} is not {TYPE_WORDS.get(type_name, 'a valid ' + type_name)}") from None
    return value


def shown(value: float) -> str:
    """A number as a person writes it: 0 not 0.0, 0.0005 not 5e-04."""
    return f"{value:g}" if isinstance(value, float) else str(value)

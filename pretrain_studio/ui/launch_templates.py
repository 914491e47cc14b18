"""Where a sweep's or a search's base configuration comes from: a template run's saved config, or what is in
the Pretrain or Fine-tune form now (the Queue & sweeps and the Search tabs both offer the choice)."""

from __future__ import annotations

from ..studio import Studio
from .errors import ui_error
from .i18n import t

BASES = ("run", "pretrain", "finetune")  # labels: sweep.base_*


def base_choices() -> list[tuple[str, str]]:
    return [(t(f"sweep.base_{key}"), key) for key in BASES]


def base_config(studio: Studio, forms: dict[str, dict], source: str, template_id: str | None,
                form_values: list) -> tuple[dict, str]:
    """(launch config with its kind, the template run's name or ''). `form_values`: the values of every form
    component in `forms` order (what a handler given them all as inputs receives)."""
    if source == "run":
        if not template_id:
            raise ui_error("error.choose_template")
        run = studio.run_status(template_id)
        return dict(run["config"]), run["name"]
    offset = 0
    for kind, inputs in forms.items():
        names = list(inputs)
        if kind == source:
            chosen_values = form_values[offset:offset + len(names)]
            values = {n: v for n, v in zip(names, chosen_values) if v is not None}
            return {**values, "kind": kind}, ""
        offset += len(names)
    raise ui_error("error.unknown_base", base=repr(source))


def form_components(forms: dict[str, dict]) -> list:
    return [c for inputs in forms.values() for c in inputs.values()]

"""Runs → Queue & sweeps: the queue in the order it will run (move up, move down, cancel), and a sweep form.

A sweep takes a base configuration (a template run's saved config, or what is in the Pretrain or
Fine-tune form now), one or two settings each with a comma-separated list of values, and queues one run
per combination (`Studio.enqueue_sweep`). While the tab is shown the queue table is polled every few
seconds but only redrawn when its content changed, so a selection in it is not disturbed while nothing
happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import gradio as gr
import pandas as pd

from ..config import FinetuneConfig, PretrainConfig
from ..studio import Studio
from .errors import notify, ui_error, user_errors
from .i18n import t, translate_columns, widget
from .launch_templates import base_choices, base_config, form_components
from .monitor_tab import run_choices
from .run_page import format_time

POLL_SECONDS = 3.0
QUEUE_COLUMNS = ["#", "name", "kind", "device", "queued", "run id"]
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class QueueTab:
    queue_table: gr.Dataframe
    timer: gr.Timer  # active only while the tab is shown (app.py): an unseen table needs no polling


def setting_choices(kind: str | None) -> list[str]:
    """Settings a sweep can vary: the config fields of that kind of job (both kinds when unknown)."""
    classes = {"pretrain": [PretrainConfig], "finetune": [FinetuneConfig]}.get(kind or "", [PretrainConfig,
                                                                                         FinetuneConfig])
    return sorted({f.name for cls in classes for f in fields(cls)} - {"name"})


def parse_values(text: str) -> list:
    """'1e-3, 5e-4' -> [0.001, 0.0005]; '8,16' -> [8, 16]; true/false -> bools; anything else stays text.
    Values that themselves hold commas (lora_target_modules) are separated with ';' instead."""
    text = (text or "").strip()
    parts = [p.strip() for p in text.split(";" if ";" in text else ",")]
    values = []
    for part in filter(None, parts):
        if NUMBER.match(part):
            number = float(part)
            values.append(int(number) if re.fullmatch(r"[+-]?\d+", part) else number)
        elif part.lower() in ("true", "false"):
            values.append(part.lower() == "true")
        else:
            values.append(part)
    return values


def queue_frame(queued: list[dict]) -> pd.DataFrame:
    """The queue as a table; column names in the tab's language (the run id stays the last column)."""
    frame = pd.DataFrame([[i + 1, r["name"], t(f"kind.{r['kind']}"), r["device"], format_time(r["created_at"]),
                           r["run_id"]] for i, r in enumerate(queued)], columns=QUEUE_COLUMNS)
    return translate_columns(frame)


def running_text(running: list[dict]) -> str:
    if not running:
        return t("queue.nothing_running")
    return t("queue.running", runs=", ".join(f"**{r['name']}** `{r['run_id']}`" for r in running))


def build_queue_tab(studio: Studio, forms: dict[str, dict], shown: gr.Tab | None = None) -> QueueTab:
    """forms: {"pretrain": PretrainTab.inputs, "finetune": FinetuneTab.inputs}, for a sweep over the form."""
    running = gr.Markdown()
    queue_table = widget(gr.Dataframe, headers=QUEUE_COLUMNS, label="queue.table", interactive=False,
                         max_height=320, datatype=["number", "str", "str", "str", "str", "str"])
    with gr.Row():
        chosen = widget(gr.Dropdown, choices=[], value=None, label="queue.chosen", scale=4)
        up = widget(gr.Button, text="queue.up", scale=1)
        down = widget(gr.Button, text="queue.down", scale=1)
        cancel = widget(gr.Button, text="queue.cancel", variant="stop", scale=1)
    seen = gr.State(None)
    timer = gr.Timer(POLL_SECONDS, active=False)

    def read(state, chosen_id=None, force=False):
        queued = studio.queue()
        now = studio.list_runs({"status": "running"})
        signature = [(r["run_id"], r["name"]) for r in queued] + [("running", r["run_id"]) for r in now]
        if signature == state and not force:
            return gr.skip(), gr.skip(), gr.skip(), state
        choices = [(f"{i + 1}. {r['name']} · {r['run_id']}", r["run_id"]) for i, r in enumerate(queued)]
        keep = chosen_id if chosen_id in {r["run_id"] for r in queued} else None
        return running_text(now), queue_frame(queued), gr.Dropdown(choices=choices, value=keep), signature

    queue_outputs = [running, queue_table, chosen, seen]
    timer.tick(user_errors(read), [seen, chosen], queue_outputs, api_visibility="private", show_progress="hidden")
    if shown is not None:
        shown.select(user_errors(lambda s, c: read(s, c, True)), [seen, chosen], queue_outputs,
                     api_visibility="private", show_progress="hidden")

    def on_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[-1] if row else gr.skip()

    queue_table.select(on_row, None, chosen, api_visibility="private")

    def mover(delta: int):
        @user_errors
        def move(run_id, state):
            if not run_id:
                raise ui_error("error.choose_queued_run")
            order = [r["run_id"] for r in studio.queue()]
            if run_id not in order:
                raise ui_error("error.no_longer_queued", run_id=run_id)
            studio.move_in_queue(run_id, max(0, order.index(run_id) + delta))
            return read(state, run_id, True)
        return move

    up.click(mover(-1), [chosen, seen], queue_outputs, api_visibility="private", show_progress="hidden")
    down.click(mover(+1), [chosen, seen], queue_outputs, api_visibility="private", show_progress="hidden")

    @user_errors
    def on_cancel(run_id, state):
        if not run_id:
            raise ui_error("error.choose_queued_run")
        studio.cancel_run(run_id)
        notify("queue.cancelled", run_id=run_id)
        return read(state, None, True)

    cancel.click(on_cancel, [chosen, seen], queue_outputs, api_visibility="private", show_progress="hidden")

    # --- sweeps ------------------------------------------------------------------------------
    widget(gr.Markdown, text="sweep.intro")
    with gr.Row():
        base = widget(gr.Radio, choices=base_choices, value="run", label="sweep.base", scale=2)
        template = widget(gr.Dropdown, choices=run_choices(studio), value=None, label="sweep.template", scale=3)
    with gr.Row():
        setting_1 = widget(gr.Dropdown, choices=setting_choices(None), value="learning_rate", allow_custom_value=True,
                           label="sweep.setting_1", scale=1)
        values_1 = widget(gr.Textbox, label="sweep.values_1", placeholder="1e-4, 5e-4, 1e-3", scale=2)
    with gr.Row():
        setting_2 = widget(gr.Dropdown, choices=[""] + setting_choices(None), value="", allow_custom_value=True,
                           label="sweep.setting_2", scale=1)
        values_2 = widget(gr.Textbox, label="sweep.values_2", placeholder="16, 32", scale=2)
    with gr.Row():
        sweep_name = widget(gr.Textbox, label="sweep.name", placeholder="sweep.name_placeholder", scale=3)
        launch = widget(gr.Button, text="sweep.launch", variant="primary", scale=1)
    result = gr.Markdown()

    @user_errors
    def on_sweep(source, template_id, key_1, text_1, key_2, text_2, name, state, *form_values):
        config, template_name = base_config(studio, forms, source, template_id, list(form_values))
        grid = {}
        for key, text in ((key_1, text_1), (key_2, text_2)):
            key = (key or "").strip()
            if not key:
                continue
            values = parse_values(text)
            if not values:
                raise ui_error("error.sweep_values", key=key)
            if key in grid:
                raise ui_error("error.sweep_same_setting", key=key)
            grid[key] = values
        if not grid:
            raise ui_error("error.sweep_no_setting")
        config["name"] = (name or "").strip() or config.get("name") or template_name
        run_ids = studio.enqueue_sweep(config, grid)
        listing = "\n".join(f"- `{run_id}`" for run_id in run_ids)
        return t("sweep.queued", count=len(run_ids), listing=listing), *read(state, None, True)

    launch.click(on_sweep, [base, template, setting_1, values_1, setting_2, values_2, sweep_name, seen,
                            *form_components(forms)], [result, *queue_outputs], api_visibility="private",
                 show_progress="hidden")

    def on_base(source, template_id):
        kind = source if source != "run" else (studio.run_status(template_id)["kind"] if template_id else None)
        choices = setting_choices(kind)
        return (gr.Dropdown(visible=source == "run"), gr.Dropdown(choices=choices),
                gr.Dropdown(choices=[""] + choices))

    for trigger in (base.change, template.change):
        trigger(user_errors(on_base), [base, template], [template, setting_1, setting_2], api_visibility="private")
    if shown is not None:
        shown.select(lambda: gr.Dropdown(choices=run_choices(studio)), None, template, api_visibility="private")
    return QueueTab(queue_table=queue_table, timer=timer)

"""Runs → All runs: every run in one table (filter, sort, click a row) and the chosen run's page below it.

The table is read from the registry when the sub-tab is shown, when a filter or the sort order changes,
on "Refresh" and after an action on the run page (rename, delete, ...); not by a timer, so header sorting
and scrolling stay put while runs train (the Live sub-tab follows a running run). Clicking a row (or
picking the run in "Open run") opens its page (run_page.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..run_states import RunStatus
from ..studio import Studio
from .errors import user_errors
from .i18n import after_switch, status_word, t, translate_columns, widget
from .monitor_tab import format_seconds, run_choices
from .quality import verdict_marker
from .run_page import RunPage, build_run_page, format_time

COLUMNS = ["name", "kind", "method", "base model", "data", "status", "steps", "best metric", "verdict", "duration",
           "created", "tags", "run id"]
KINDS = [("runs.all_kinds", ""), ("runs.pretraining", "pretrain"), ("runs.finetuning", "finetune")]
STATUSES = ["", *(s.value for s in RunStatus)]
# The sort dropdown's values are these (English) names; its labels are `sort.<name>` in the tab's language.
SORTS = {
    "newest first": (lambda r: -r["created_at"]),
    "oldest first": (lambda r: r["created_at"]),
    "name": (lambda r: r["name"].lower()),
    "best metric (eval loss ↑, then macro-F1 ↓)": (
        lambda r: (r["best_metric"] is None, bool(r["best_metric"]) and r["best_metric"]["name"] == "eval_f1",
                   (r["best_metric"] or {}).get("value", 0) * (-1 if r["kind"] == "finetune" else 1))),
    "longest first": (lambda r: -r["elapsed_seconds"]),
    "most steps first": (lambda r: -r["step"]),
    "status": (lambda r: (r["status"], -r["created_at"])),
}


@dataclass
class RunsTableTab:
    run: gr.Dropdown  # the run whose page is open
    page: RunPage


def base_model_label(value: str | None, names: dict[str, str]) -> str:
    """A base run's name instead of its id; a folder by its last two parts."""
    if not value:
        return ""
    if value in names:
        return names[value]
    parts = value.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else value


def best_text(best: dict | None) -> str:
    return f"{best['name']} {best['value']:.4g}" if best else ""


def runs_frame(rows: list[dict], names: dict[str, str]) -> pd.DataFrame:
    """The runs as a table; headers, kinds and statuses in the tab's language (the run id stays the last column)."""
    frame = pd.DataFrame([[r["name"], t(f"kind.{r['kind']}"), r["method"] or "",
                           base_model_label(r["base_model"], names), r["data"], status_word(r["status"]), r["step"],
                           best_text(r["best_metric"]), verdict_marker(r), format_seconds(r["elapsed_seconds"]),
                           format_time(r["created_at"]), ", ".join(r["tags"]), r["run_id"]] for r in rows],
                         columns=COLUMNS)
    return translate_columns(frame)


def kind_choices() -> list[tuple[str, str]]:
    return [(t(key), value) for key, value in KINDS]


def status_choices() -> list[tuple[str, str]]:
    return [(t("runs.any_status"), "")] + [(status_word(s), s) for s in STATUSES[1:]]


def sort_choices() -> list[tuple[str, str]]:
    return [(t(f"sort.{name}"), name) for name in SORTS]


def read_table(studio: Studio, kind: str, status: str, text: str, sort: str) -> tuple[pd.DataFrame, str]:
    everything = studio.list_runs({})
    filters = {"kind": kind or None, "status": status or None, "text": (text or "").strip() or None}
    rows = studio.list_runs(filters) if any(filters.values()) else everything
    rows = sorted(rows, key=SORTS.get(sort, SORTS["newest first"]))
    names = {r["run_id"]: r["name"] for r in everything}
    count = (t("runs.count_of", shown=len(rows), total=len(everything)) if len(rows) != len(everything)
             else t("runs.count", total=len(rows)))
    return runs_frame(rows, names), count


def build_runs_table_tab(studio: Studio, shown: gr.Tab | None = None) -> RunsTableTab:
    """`shown`: the tab this is built in; the table is read again whenever it is selected."""
    with gr.Row():
        kind = widget(gr.Dropdown, choices=kind_choices, value="", label="runs.kind", scale=1)
        status = widget(gr.Dropdown, choices=status_choices, value="", label="runs.status", scale=1)
        text = widget(gr.Textbox, label="runs.search", placeholder="runs.search_placeholder", scale=3)
        sort = widget(gr.Dropdown, choices=sort_choices, value="newest first", label="runs.sort", scale=2)
        refresh = widget(gr.Button, text="runs.refresh", scale=1)
    count = gr.Markdown()
    table = widget(gr.Dataframe, headers=COLUMNS, label="runs.table", interactive=False, max_height=420, wrap=False,
                   datatype=["str"] * 6 + ["number"] + ["str"] * 6, elem_classes="runs-table",
                   buttons=["fullscreen", "copy"])
    with gr.Row():
        run = widget(gr.Dropdown, choices=run_choices(studio), value=None, label="runs.open", scale=4,
                     info="runs.open_info")
        reload_page = widget(gr.Button, text="runs.reload", scale=1)
    page = build_run_page(studio, run, reload_page)

    filters = [kind, status, text, sort]

    @user_errors
    def refresh_table(kind_value, status_value, text_value, sort_value, run_id):
        frame, counted = read_table(studio, kind_value, status_value, text_value, sort_value)
        choices = run_choices(studio)
        keep = run_id if run_id in {value for _, value in choices} else None
        return frame, counted, gr.Dropdown(choices=choices, value=keep)

    table_outputs = [table, count, run]
    for trigger in (kind.change, status.change, sort.change, refresh.click, text.submit):
        trigger(refresh_table, [*filters, run], table_outputs, api_visibility="private", show_progress="hidden")
    text.change(refresh_table, [*filters, run], table_outputs, api_visibility="private", trigger_mode="always_last",
                show_progress="hidden")
    if shown is not None:
        shown.select(refresh_table, [*filters, run], table_outputs, api_visibility="private", show_progress="hidden")
    after_switch(refresh_table, [*filters, run], table_outputs)
    for event in page.changed:
        event.then(refresh_table, [*filters, run], table_outputs, api_visibility="private", show_progress="hidden")

    def on_row(evt: gr.SelectData):
        row = evt.row_value or []
        return row[-1] if row else gr.skip()  # the last column is the run id, whatever the sort

    table.select(on_row, None, run, api_visibility="private")
    return RunsTableTab(run=run, page=page)

"""Runs → Compare: two or more runs side by side: overlaid curves, the settings that differ, final metrics,
and one text sent to every selected model (fill-mask for pretraining runs, classification for fine-tunes).

The zoom problem, by design: Gradio 6's `gr.Plot` replaces the whole figure on every update, so the
user's zoom and hidden series are lost even with plotly's `uirevision`. The compare chart is therefore
drawn only by the user (changing the runs, metric, smoothing or scale, or clicking Refresh), never by a
timer, unless "Live refresh" is ticked (off by default); then a timer redraws it every few seconds, only
when new points have arrived, and the UI says that zoom resets on each refresh. Long series are thinned
(plots.thin), so 5 runs x 2,000 steps draw as quickly as short runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio, StudioError
from .errors import ui_error, user_errors
from .i18n import after_switch, t, translate_columns, translate_error, widget
from .monitor_tab import run_choices
from .plots import compare_figure

METRICS = ["train_loss", "eval_loss", "eval_accuracy", "eval_f1", "eval_entity_f1", "perplexity", "learning_rate",
           "grad_norm", "tokens_per_second", "examples_per_second"]
FIRST_METRICS = ["train_loss", "eval_loss", "perplexity", "eval_accuracy", "eval_f1"]
LIVE_SECONDS = 5.0


def still_note() -> str:
    return t("compare.still_note")


def live_note() -> str:
    return t("compare.live_note", seconds=f"{LIVE_SECONDS:g}")


@dataclass
class CompareTab:
    runs: gr.Dropdown  # the runs being compared (a multiselect)


def short_label(run: dict) -> str:
    """A run's name with the end of its id: names repeat (default names), ids don't."""
    return f"{run['name']} ({run['run_id'][-6:]})"


LOSS_METRICS = ("train_loss", "eval_loss")  # drawn with each pretraining run's no-context line


def read_curves(studio: Studio, run_ids: list[str], metric: str, lines: dict | None = None) -> tuple[dict, dict]:
    """{label: [(step, value), ...]} of one metric per run, and {run_id: last metric row id} (for live refresh).
    `lines`, when given, is filled with {label: no-context loss} of the pretraining runs (for a loss metric)."""
    curves, last_ids = {}, {}
    for run_id in run_ids:
        run = studio.run_status(run_id)
        rows = studio.run_metrics(run_id, 0)
        curves[short_label(run)] = [(r["step"], r["value"]) for r in rows if r["name"] == metric]
        last_ids[run_id] = rows[-1]["id"] if rows else 0
        if lines is not None and metric in LOSS_METRICS and (run.get("info") or {}).get("no_context_loss") is not None:
            lines[short_label(run)] = run["info"]["no_context_loss"]
    return curves, last_ids


def settings_frame(comparison: dict) -> pd.DataFrame:
    """One row per setting that differs, one column per run."""
    labels = {r["run_id"]: short_label(r) for r in comparison["runs"]}
    rows = [{"setting": key, **{labels[rid]: cell(value) for rid, value in values.items()}}
            for key, values in comparison["differing_settings"].items()]
    return translate_columns(pd.DataFrame(rows, columns=["setting", *labels.values()]))


def finals_frame(comparison: dict) -> pd.DataFrame:
    """One row per run: the last value of each metric it logged (the usual ones first)."""
    labels = {r["run_id"]: short_label(r) for r in comparison["runs"]}
    names = sorted({n for m in comparison["final_metrics"].values() for n in m},
                   key=lambda n: (FIRST_METRICS.index(n) if n in FIRST_METRICS else len(FIRST_METRICS), n))
    rows = [{"run": labels[rid], **{n: round(m[n], 5) if n in m else None for n in names}}
            for rid, m in comparison["final_metrics"].items()]
    return translate_columns(pd.DataFrame(rows, columns=["run", *names]))


def cell(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def side_by_side(studio: Studio, run_ids: list[str], text: str) -> pd.DataFrame:
    """The same text through every selected model: top fill-mask answers, or the predicted label."""
    rows = []
    for run_id in run_ids:
        run = studio.run_status(run_id)
        try:
            if run["kind"] == "pretrain":
                answers = studio.fill_mask(run_id, text, 5)
                answer = " | ".join(per_mask[0]["token"] for per_mask in answers)
                detail = " | ".join(", ".join(f"{a['token']} {a['score']:.3f}" for a in per_mask)
                                    for per_mask in answers)
            else:
                result = studio.classify(run_id, text)
                answer = result["label"]
                detail = ", ".join(f"{label} {p:.3f}" for label, p in
                                   sorted(result["scores"].items(), key=lambda kv: -kv[1]))
        except StudioError as exc:
            answer, detail = "—", t("compare.answer_error", error=translate_error(exc))
        rows.append({"run": short_label(run), "task": t("compare.task_fill") if run["kind"] == "pretrain"
                     else t("compare.task_classify"), "answer": answer, "top answers": detail})
    return translate_columns(pd.DataFrame(rows, columns=["run", "task", "answer", "top answers"]))


def build_compare_tab(studio: Studio, shown: gr.Tab | None = None) -> CompareTab:
    """`shown`: the tab this is built in; the run list is refreshed whenever it is selected."""
    with gr.Row():
        runs = widget(gr.Dropdown, choices=run_choices(studio), value=[], multiselect=True, label="compare.runs",
                      info="compare.runs_info", scale=4)
        metric = widget(gr.Dropdown, choices=METRICS, value="eval_loss", allow_custom_value=True,
                        label="compare.metric", scale=1)
    with gr.Row():
        smoothing = widget(gr.Slider, minimum=0, maximum=0.99, value=0, step=0.01, label="compare.smoothing",
                           scale=3)
        log_y = widget(gr.Checkbox, value=False, label="compare.log_scale", scale=1)
        live = widget(gr.Checkbox, value=False, label="compare.live", scale=1)
        refresh = widget(gr.Button, text="runs.refresh", scale=1)
    note = gr.Markdown(still_note())
    plot = widget(gr.Plot, label="page.curves", elem_classes="compare-plot")
    with gr.Row():
        differing = widget(gr.Dataframe, headers=["setting"], label="compare.differing", interactive=False,
                           wrap=True, max_height=320)
        finals = widget(gr.Dataframe, headers=["run"], label="page.finals", interactive=False, max_height=320)
    widget(gr.Markdown, text="compare.try_intro")
    with gr.Row():
        text = widget(gr.Textbox, label="compare.text", value="the [MASK] was released in 2010 .", scale=4)
        ask = widget(gr.Button, text="compare.ask", variant="primary", scale=1)
    answers = widget(gr.Dataframe, headers=["run", "task", "answer", "top answers"], label="compare.answers",
                     interactive=False, wrap=True)
    seen = gr.State({})
    timer = gr.Timer(LIVE_SECONDS, active=False)

    @user_errors
    def draw(run_ids, metric_name, smooth, log_scale):
        run_ids = list(run_ids or [])
        lines: dict[str, float] = {}
        curves, last_ids = read_curves(studio, run_ids, metric_name or "eval_loss", lines)
        figure = compare_figure(curves, metric_name or "eval_loss", float(smooth or 0), bool(log_scale),
                                no_context=lines)
        if len(run_ids) >= 2:
            comparison = studio.compare_runs(run_ids)
            tables = settings_frame(comparison), finals_frame(comparison)
        else:
            tables = (translate_columns(pd.DataFrame(columns=["setting"])),
                      translate_columns(pd.DataFrame(columns=["run"])))
        return figure, *tables, {"run_ids": run_ids, "last_ids": last_ids}

    @user_errors
    def on_tick(run_ids, metric_name, smooth, log_scale, state):
        """Live refresh: redraw only when some selected run logged new rows since the last drawing."""
        run_ids = list(run_ids or [])
        last = state.get("last_ids", {}) if state.get("run_ids") == run_ids else {}
        if last and not any(studio.run_metrics(rid, last.get(rid, 0)) for rid in run_ids):
            return gr.skip(), gr.skip(), gr.skip(), state
        return draw(run_ids, metric_name, smooth, log_scale)

    inputs = [runs, metric, smoothing, log_y]
    outputs = [plot, differing, finals, seen]
    for trigger in (runs.change, metric.change, smoothing.release, log_y.change, refresh.click):
        trigger(draw, inputs, outputs, api_visibility="private", trigger_mode="always_last")
    timer.tick(on_tick, [*inputs, seen], outputs, api_visibility="private", show_progress="hidden")
    live.change(lambda on: (gr.Timer(active=bool(on)), live_note() if on else still_note()), live, [timer, note],
                api_visibility="private")
    after_switch(lambda on: live_note() if on else still_note(), live, note)

    @user_errors
    def on_ask(run_ids, value):
        if not run_ids:
            raise ui_error("error.choose_runs_to_ask")
        return side_by_side(studio, list(run_ids), value)

    ask.click(on_ask, [runs, text], answers, api_visibility="private")
    text.submit(on_ask, [runs, text], answers, api_visibility="private")
    if shown is not None:
        shown.select(lambda: gr.Dropdown(choices=run_choices(studio)), None, runs, api_visibility="private")
    return CompareTab(runs=runs)

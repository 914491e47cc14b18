"""Runs tab: pick a run and watch it live: status, progress, loss curves, log tail, Stop.

A `gr.Timer` polls the registry every `POLL_SECONDS` and asks only for metric rows
newer than the last one this browser tab has seen (kept in a `gr.State`), so
a reload or a second tab simply starts from zero and catches up, and the
poll's cost does not grow with the run's length: each series is kept to at
most `plots.LIVE_POINTS` points as rows arrive (`plots.LiveSeries`: first and
latest point, each stretch's lowest and highest), so neither the state nor a
redraw grows at step 50,000 (`bench/poll_cost.py`). The plot is redrawn only
when new points arrived, and not at all while "Pause live plot" is ticked: a
redraw of a `gr.Plot` resets the user's zoom and hidden series (Gradio 6
replaces the whole figure), so pausing is how to zoom into a running run.

The browser is the costly end of a poll: it re-renders what each one sends, and on a small machine that
CPU comes out of the training beside it (`bench/pretrain_throughput.py` measures the app beside a
watching tab against the CLI). So the timer ticks only while someone can see the monitor (the Live tab
is shown: `watching`) and the run can still change (queued or running); a running run's plot is
redrawn at most every `PLOT_SECONDS`, and at once when the run ends or another run is chosen.

Beside the loss plot, a pretraining run with downstream checks (training/downstream.py) gets a second figure,
redrawn only when a check arrived and hidden for every other run; the progress line says where the eval loss
stands against the no-context line and what the checks showed (ui/quality.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr

from ..run_states import RunStatus
from ..studio import Studio
from .errors import notify, ui_error, user_errors
from .i18n import status_word, t, translate_error, widget
from .plots import LiveSeries, confusion_figure, downstream_figure, loss_figure
from .quality import downstream_lines, has_downstream, no_context_suffix, start_line_label, verdict_line

POLL_SECONDS = 2.0
PLOT_SECONDS = 5.0
# Every poll runs in one queue, one at a time, in the order triggered: each reads `watching` and the tab's
# state when it runs, so the last poll after a tab switch decides whether the timer ticks (two polls in
# parallel could finish out of order and leave the timer off on a shown tab, or ticking on a hidden one).
SERIAL = {"concurrency_id": "monitor-poll", "concurrency_limit": 1}


@dataclass
class MonitorTab:
    run: gr.Dropdown
    watching: gr.State  # True while the Live tab is the one shown
    poll_inputs: list
    poll_outputs: list
    poll: object

    def refresh_after(self, event) -> None:
        """Poll once after `event` (a tab switch that changed `watching`): redraw and (de)activate the timer."""
        event.then(self.poll, self.poll_inputs, self.poll_outputs, api_visibility="private", show_progress="hidden",
                   **SERIAL)


def run_choices(studio: Studio) -> list[tuple[str, str]]:
    # No status in the label: it would go stale; the status line below the dropdown is live.
    return [(f"{r['name']} · {r['run_id']}", r["run_id"]) for r in studio.list_runs()]


def progress_text(status: dict, series: dict, dataset_names: dict[str, str] | None = None) -> str:
    step, total = status["step"], status["max_steps"]
    elapsed = status["elapsed_seconds"]
    info = status.get("info") or {}
    parts = [f"### {status['name']}", t("monitor.status_line", run_id=status["run_id"],
                                            status=status_word(status["status"]), device=status["device"])]
    line = (t("monitor.step", step=step) + (f" / {total}" if total else "")
            + t("monitor.elapsed", time=format_seconds(elapsed)))
    budget = info.get("time_budget_seconds")
    if status["status"] == "running" and budget:
        # A time budget is the run's end (max_steps may be 0 or only a bound): what is left of it, the downstream
        # checks' pauses not counted (time_budget.py).
        spent = max(0.0, elapsed - (info.get("downstream_seconds") or 0))
        line += t("monitor.eta", time=format_seconds(max(0.0, budget - spent)))
    elif status["status"] == "running" and total and step:
        line += t("monitor.eta", time=format_seconds(elapsed / step * (total - step)))
    speed = series.get("tokens_per_second")
    if speed:
        line += t("monitor.tokens_per_second", value=f"{speed[-1][1]:,.0f}")
    examples = series.get("examples_per_second")
    if examples:
        line += t("monitor.examples_per_second", value=f"{examples[-1][1]:,.1f}")
    parts.append(line)
    latest = {name: points[-1][1] for name, points in series.items() if points}
    shown = [f"{t(label)} {latest[key]:.4g}" + (no_context_suffix(latest[key], info) if key == "eval_loss" else "")
             for key, label in
             (("train_loss", "metric.train_loss"), ("eval_loss", "metric.eval_loss"),
              ("perplexity", "metric.perplexity"),
              ("eval_accuracy", "metric.masked_accuracy" if "perplexity" in latest else "metric.eval_accuracy"),
              ("eval_f1", "metric.eval_f1")) if key in latest]
    if shown:
        parts.append(" · ".join(shown))
    parts += downstream_lines(status, dataset_names)
    parts += search_lines(status)
    if status.get("error"):
        parts.append(t("monitor.error", error=translate_error(status["error"].splitlines()[0])))
    parts.append(t("monitor.reproduce", command=status["cli_command"]))
    return "  \n".join(parts)


def search_lines(status: dict) -> list[str]:
    """A search trial says so, and a pruned one says at which step and why (services/search.py)."""
    info = status.get("info") or {}
    lines = []
    if info.get("study"):
        lines.append(t("monitor.trial_of", trial=info["study"]["trial"], study=info["study"]["id"]))
    if info.get("pruned"):
        lines.append(t("monitor.pruned", step=info["pruned"]["step"], reason=info["pruned"]["reason"]))
    return lines


def entity_results_text(status: dict) -> str:
    """What fine-tuning a token classifier bought: entity scores beside memorising and the probe, per type, the
    partial-match scores and the most frequent errors."""
    tm, base, info = status["test_metrics"], status["baselines"], status["info"]

    def scores(row: dict) -> dict:
        return {"f1": f"{row['entity_f1']:.4f}", "precision": f"{row['entity_precision']:.4f}",
                "recall": f"{row['entity_recall']:.4f}"}

    partial = {mode: f"{v['f1']:.4f}" for mode, v in tm.get("partial_match", {}).items()}
    lines = [t("results.entities_title", split=info.get("score_split", "test"), sentences=f"{tm['sentences']:,}"),
             t("results.entities_header"), "|---|---|---|---|",
             t("results.entities_fine_tuned", method=status["config"].get("method"), **scores(tm)),
             t("results.entities_probe", **scores(base["linear_probe"])),
             t("results.entities_memorise", **scores(base["memorise"])), "",
             *([verdict_line(info), ""] if info.get("verdict") else []),
             t("results.per_type_header"), "|---|---|---|---|---|"]
    lines += [f"| {markdown_cell(name)} | {c['f1']:.3f} | {c['precision']:.3f} | {c['recall']:.3f} | {c['support']} |"
              for name, c in tm["per_type"].items()]
    if partial:
        lines += ["", t("results.partial", exact=partial.get("exact", "-"), ent_type=partial.get("ent_type", "-"),
                        partial=partial.get("partial", "-"), accuracy=f"{tm['token_accuracy']:.4f}")]
    errors = info.get("error_table") or []
    if errors:
        lines += ["", t("results.errors_header"), "|---|---|---|---|---|"]
        lines += [f"| {e['error']} | {e['gold']} | {e['predicted']} | {e['count']} | "
                  f"{markdown_cell(e['examples'][0][:160] if e['examples'] else '')} |" for e in errors[:8]]
    if info.get("trainable_parameters"):
        lines.append("\n" + t("results.parameters", trainable=f"{info['trainable_parameters']:,}",
                               total=f"{info['total_parameters']:,}", share=f"{info['trainable_share']:.2%}",
                               size=f"{info.get('artifact_bytes', 0) / 1e6:.2f}"))
    return "\n".join(lines)


def results_text(status: dict) -> str:
    """What fine-tuning bought: the model beside the two baselines, then per-class precision and recall."""
    if "entity_f1" in status["test_metrics"]:
        return entity_results_text(status)
    tm, base, info = status["test_metrics"], status["baselines"], status["info"]
    split = info.get("score_split", "test")
    lines = [t("results.title", split=split, examples=f"{tm['examples']:,}"),
             t("results.header"), "|---|---|---|",
             t("results.fine_tuned", method=status["config"].get("method"), accuracy=f"{tm['accuracy']:.4f}",
               f1=f"{tm['f1']:.4f}"),
             t("results.linear_probe", accuracy=f"{base['linear_probe']['accuracy']:.4f}",
               f1=f"{base['linear_probe']['f1']:.4f}"),
             t("results.majority", predicts=base["majority"]["predicts"],
               accuracy=f"{base['majority']['accuracy']:.4f}", f1=f"{base['majority']['f1']:.4f}"), "",
             *([verdict_line(info), ""] if info.get("verdict") else []),
             t("results.per_class_header"), "|---|---|---|---|"]
    lines += [f"| {markdown_cell(name)} | {c['precision']:.3f} | {c['recall']:.3f} | {c['support']} |"
              for name, c in tm["per_class"].items()]
    if info.get("trainable_parameters"):
        lines.append("\n" + t("results.parameters", trainable=f"{info['trainable_parameters']:,}",
                               total=f"{info['total_parameters']:,}", share=f"{info['trainable_share']:.2%}",
                               size=f"{info.get('artifact_bytes', 0) / 1e6:.2f}"))
    return "\n".join(lines)


def markdown_cell(text) -> str:
    """A label as a Markdown table cell: a '|' in it would split the cell (Chinese labels need nothing else)."""
    return str(text).replace("|", "\\|")


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def build_monitor_tab(studio: Studio) -> MonitorTab:
    with gr.Row():
        run = widget(gr.Dropdown, choices=run_choices(studio), label="monitor.run", interactive=True, scale=4)
        refresh = widget(gr.Button, text="monitor.refresh", scale=1)
        stop = widget(gr.Button, text="monitor.stop", variant="stop", scale=1)
    status_md = gr.Markdown()
    pause = widget(gr.Checkbox, value=False, label="monitor.pause", info="monitor.pause_info")
    with gr.Row():
        plot = widget(gr.Plot, label="monitor.plot")
        # Shown only for a pretraining run with downstream checks (training/downstream.py).
        downstream = widget(gr.Plot, label="monitor.downstream", visible=False)
    with gr.Row():
        results = gr.Markdown()
        confusion = widget(gr.Plot, label="monitor.confusion", visible=False)
    log = widget(gr.Textbox, label="monitor.log", lines=12, max_lines=12, interactive=False, autoscroll=True)
    seen = gr.State({"run_id": None, "after_id": 0, "series": {}})
    watching = gr.State(False)
    timer = gr.Timer(POLL_SECONDS, active=False)

    def ticking(state, wanted: bool):
        """The timer's update: sent only when its activity changes, so a steady poll sends nothing for it."""
        if state.get("ticking") == wanted:
            return gr.skip()
        state["ticking"] = wanted
        return gr.Timer(active=wanted)

    def poll(run_id, state, paused=False, shown=True, throttled=False):
        """Read only the rows after the last seen id; redraw only when something arrived (and not paused).
        `throttled` (the timer's polls): a running run's plot waits until `PLOT_SECONDS` after its last
        redraw; a user's action (choosing a run, un-pausing, showing the tab) redraws at once."""
        if not run_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), state, ticking(state, False)
        new_run = state.get("run_id") != run_id
        if new_run:
            state = {"run_id": run_id, "after_id": 0, "series": {}, "ticking": state.get("ticking")}
        # Status first: a run that ends between the two reads is then seen as running once more, and its
        # last rows are read by the next poll; the other order could stop the timer before those rows.
        status = studio.run_status(run_id)
        rows = studio.run_metrics(run_id, state["after_id"])
        live = state["series"]  # name -> LiveSeries: bounded however long the run
        if any(row["name"] in live and row["step"] <= live[row["name"]].latest[0] for row in rows):
            # A step seen before: the run was resumed and its rows after the checkpoint were dropped (or a point
            # was recorded again). Read its curves again from the start, so the plot shows one curve.
            state["after_id"], state["series"] = 0, {}
            live = state["series"]
            rows = studio.run_metrics(run_id, 0)
        for row in rows:
            if row["name"] not in live:
                live[row["name"]] = LiveSeries()
            live[row["name"]].append(row["step"], row["value"])
        if rows:
            state["after_id"] = rows[-1]["id"]
        # Each curve's latest point for the progress line; the whole (bounded) series only for a redraw.
        latest = {name: [kept.latest] for name, kept in live.items()}
        stale = bool(rows) or not state.get("drawn")
        active = RunStatus(status["status"]).active
        info = status.get("info") or {}
        names = None
        if info.get("downstream") or any(name.startswith("downstream_") for name in live):
            if "dataset_names" not in state:  # read once per run: the checks' datasets by name, not id
                state["dataset_names"] = {d["dataset_id"]: d["name"] for d in studio.list_datasets()}
            names = state["dataset_names"]
        checks = gr.skip()
        if paused and not new_run:  # a newly chosen run is always drawn; pausing keeps the zoom on this one
            figure = gr.skip()
            state["drawn"] = not stale  # un-pausing redraws what arrived meanwhile
        elif stale and (not throttled or not active or time.monotonic() - state.get("drawn_at", 0) >= PLOT_SECONDS):
            points = {name: kept.points() for name, kept in live.items()}
            figure = loss_figure(points, no_context=info.get("no_context_loss"))
            state["drawn"], state["drawn_at"] = True, time.monotonic()
            # The downstream figure: redrawn only when a check arrived (a redraw resets its zoom), hidden for a
            # run without checks.
            signature = [(name, kept.latest) for name, kept in sorted(live.items()) if name.startswith("downstream_")]
            if has_downstream(points):
                if signature != state.get("checks_drawn"):
                    checks = gr.Plot(value=downstream_figure(points, start_line_label(status["config"]), names),
                                     visible=True)
                    state["checks_drawn"] = signature
            elif state.get("checks_drawn") != []:
                checks, state["checks_drawn"] = gr.Plot(visible=False), []
        else:  # nothing new, or a redraw too soon after the last one: kept for a later poll
            figure = gr.skip()
            state["drawn"] = not stale
        text, matrix = gr.skip(), gr.skip()
        if status["test_metrics"] and not state.get("results_drawn"):
            # Final scores appear once, when a fine-tuning run has finished.
            state["results_drawn"] = True
            text = results_text(status)
            tm = status["test_metrics"]
            matrix = (gr.Plot(value=confusion_figure(tm["confusion_matrix"], tm["labels"]), visible=True)
                      if "confusion_matrix" in tm else gr.Plot(visible=False))  # a token classifier has none
        elif not status["test_metrics"] and state.get("results_drawn") is not False:
            state["results_drawn"] = False
            text, matrix = "", gr.Plot(visible=False)
        # Every output left unchanged is skipped: the browser re-renders what it receives, and on a small
        # machine that rendering takes CPU from the training beside it.
        log_tail = status["log_tail"] if status["log_tail"] != state.get("log_tail") else gr.skip()
        state["log_tail"] = status["log_tail"]
        progress = progress_text(status, latest, names)
        if progress == state.get("progress"):
            progress = gr.skip()
        else:
            state["progress"] = progress
        return progress, figure, log_tail, text, matrix, checks, state, ticking(state, bool(shown) and active)

    inputs = [run, seen, pause, watching]
    outputs = [status_md, plot, log, results, confusion, downstream, seen, timer]
    timer.tick(user_errors(lambda *values: poll(*values, throttled=True)), inputs, outputs,
               api_visibility="private", show_progress="hidden", **SERIAL)
    run.change(user_errors(poll), inputs, outputs, api_visibility="private", **SERIAL)
    pause.change(user_errors(poll), inputs, outputs, api_visibility="private", show_progress="hidden", **SERIAL)
    refresh.click(lambda: gr.Dropdown(choices=run_choices(studio)), None, run, api_visibility="private")

    @user_errors
    def on_stop(run_id):
        if not run_id:
            raise ui_error("error.choose_run")
        result = studio.stop_run(run_id)
        notify("monitor.stop_requested", run_id=run_id)
        return result["status"]

    stop.click(on_stop, run, None, api_visibility="private")
    return MonitorTab(run=run, watching=watching, poll_inputs=inputs, poll_outputs=outputs, poll=user_errors(poll))

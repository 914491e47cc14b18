"""Runs → Search: define a hyperparameter search, launch it, follow its trials, promote the best.

The form takes a base configuration (a template run, or the Pretrain or Fine-tune form as it is now), the space
as JSON (a "Suggest" button fills in one for the template's method), the objective, sampler, pruner and budget,
and calls `Studio.start_search`. Below it, the study page: its state and best trial, the trials table, Optuna's
plots (objective over trials, parallel coordinates, importances), Pause / Resume / Cancel, and the best trial
cloned into its launch form (app.py) or queued again with more steps. While the tab is shown a timer redraws
the page when a trial starts, reports or ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..search.space import PRUNERS, SAMPLERS
from ..studio import Studio
from .errors import notify, ui_error, user_errors
from .i18n import status_word, t, translate_columns, widget
from .launch_templates import base_choices, base_config, form_components
from .monitor_tab import run_choices

POLL_SECONDS = 2.0
DEFAULT_SPACE = '{\n  "learning_rate": {"low": 1e-5, "high": 1e-3, "log": true}\n}'
OBJECTIVE_CHOICES = ["eval_accuracy", "eval_f1", "eval_loss", "eval_entity_f1", "eval_token_accuracy", "perplexity"]
TRIAL_COLUMNS = ["#", "status", "objective", "steps", "duration", "settings", "run id"]


@dataclass
class SearchTab:
    timer: gr.Timer  # active only while the tab is shown (app.py)
    clone_best: gr.Button  # app.py loads the best trial's run into its launch form
    best_run: gr.State


def study_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{s['name']} · {status_word(s['status'])} · {s['finished_trials']}/{s['n_trials'] or '∞'} · "
             f"{s['study_id']}", s["study_id"]) for s in studio.list_studies()]


def trials_frame(status: dict) -> pd.DataFrame:
    rows = []
    for trial in status["trials"]:
        value = "" if trial["value"] is None else f"{trial['value']:.4f}"
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in trial["params"].items())
        seconds = "" if trial["seconds"] is None else f"{trial['seconds']:.0f} s"
        rows.append([trial["number"], status_word(trial["status"]), value, trial["steps"] or 0, seconds, settings,
                     trial["run_id"] or ""])
    return translate_columns(pd.DataFrame(rows, columns=TRIAL_COLUMNS))


def summary_text(status: dict) -> str:
    budget = status["n_trials"] or "∞"
    lines = [t("search.summary", name=status["name"], state=status_word(status["status"]),
               finished=status["finished_trials"], budget=budget, pruned=status["pruned_trials"],
               objective=status["objective"], direction=t(f"search.{status['direction']}"),
               steps=status["steps_trained"], minutes=f"{status['seconds_trained'] / 60:.1f}")]
    if status["reason"]:
        lines.append(t("search.reason", reason=status["reason"]))
    best = status["best"]
    if best:
        settings = ", ".join(f"`{k}={v:.3g}`" if isinstance(v, float) else f"`{k}={v}`"
                             for k, v in best["params"].items())
        lines.append(t("search.best", number=best["number"], value=f"{best['value']:.4f}", run_id=best["run_id"],
                       settings=settings))
    else:
        lines.append(t("search.no_best"))
    return "\n\n".join(lines)


def parse_space(text: str) -> dict:
    try:
        space = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ui_error("error.search_space_json", line=exc.lineno, message=exc.msg) from None
    if not isinstance(space, dict):
        raise ui_error("error.search_space_json", line=1, message="not a JSON object")
    return space


def build_search_tab(studio: Studio, forms: dict[str, dict], shown: gr.Tab | None = None) -> SearchTab:
    """forms: {"pretrain": PretrainTab.inputs, "finetune": FinetuneTab.inputs}, for a search over the form."""
    widget(gr.Markdown, text="search.intro")
    with gr.Row():
        base = widget(gr.Radio, choices=base_choices, value="run", label="sweep.base", scale=2)
        template = widget(gr.Dropdown, choices=run_choices(studio), value=None, label="search.template", scale=3)
        suggest = widget(gr.Button, text="search.suggest", scale=1)
    space = widget(gr.Textbox, value=DEFAULT_SPACE, lines=5, max_lines=14, label="search.space",
                   info="search.space_info")
    with gr.Row():
        objective = widget(gr.Dropdown, choices=OBJECTIVE_CHOICES, value="eval_accuracy", allow_custom_value=True,
                           label="search.objective")
        direction = widget(gr.Dropdown, choices=lambda: [(t("search.auto"), ""), (t("search.maximize"), "maximize"),
                                                         (t("search.minimize"), "minimize")],
                           value="", label="search.direction")
        sampler = widget(gr.Dropdown, choices=list(SAMPLERS), value="tpe", label="search.sampler")
        pruner = widget(gr.Dropdown, choices=list(PRUNERS), value="median", label="search.pruner")
    with gr.Row():
        n_trials = widget(gr.Number, value=12, precision=0, minimum=0, label="search.n_trials")
        timeout = widget(gr.Number, value=0, minimum=0, label="search.timeout")
        seed = widget(gr.Number, value=0, precision=0, minimum=0, label="search.seed")
        name = widget(gr.Textbox, label="search.name", placeholder="search.name_placeholder")
    start = widget(gr.Button, text="search.start", variant="primary")

    widget(gr.Markdown, text="search.study_heading")
    with gr.Row():
        study = widget(gr.Dropdown, choices=study_choices(studio), value=None, label="search.study", scale=4)
        refresh = widget(gr.Button, text="search.refresh", scale=1)
    summary = gr.Markdown()
    trials = widget(gr.Dataframe, headers=TRIAL_COLUMNS, label="search.trials", interactive=False, max_height=360,
                    wrap=True)
    with gr.Row():
        history = widget(gr.Plot, label="search.plot_history")
        parallel = widget(gr.Plot, label="search.plot_parallel")
    importance = widget(gr.Plot, label="search.plot_importance")
    with gr.Row():
        pause = widget(gr.Button, text="search.pause")
        extra = widget(gr.Number, value=0, precision=0, minimum=0, label="search.extra_trials")
        resume = widget(gr.Button, text="search.resume")
        cancel = widget(gr.Button, text="search.cancel", variant="stop")
    with gr.Row():
        clone_best = widget(gr.Button, text="search.clone_best")
        more_steps = widget(gr.Number, value=0, precision=0, minimum=0, label="search.more_steps")
        launch_best = widget(gr.Button, text="search.launch_best")
    best_run = gr.State(None)
    seen = gr.State(None)
    timer = gr.Timer(POLL_SECONDS, active=False)

    def read(study_id, state, force=False):
        """The study page; only redrawn when something changed (a table redrawn every tick loses its scroll)."""
        if not study_id:
            return t("search.choose_study"), None, None, None, None, None, None
        status = studio.search_status(study_id)
        page_signature = [study_id, status["status"], status["reason"]] + [
            (r["status"], r["value"], r["steps"], len(r["intermediate"])) for r in status["trials"]]
        # The plots change only when a trial ends (Optuna draws finished trials): redrawn then, not at every point.
        plot_signature = [study_id] + [(r["number"], r["status"]) for r in status["trials"] if r["counted"]]
        old_page, old_plots = state or (None, None)
        if page_signature == old_page and not force:
            return (gr.skip(),) * 6 + (state,)
        plots = gr.skip(), gr.skip(), gr.skip()
        if force or plot_signature != old_plots:
            figures = studio.search_plots(study_id)
            plots = figures["history"], figures["parallel"], figures["importance"]
        best = (status["best"] or {}).get("run_id")
        return (summary_text(status), trials_frame(status), *plots, best, (page_signature, plot_signature))

    page = [summary, trials, history, parallel, importance, best_run, seen]
    timer.tick(user_errors(read), [study, seen], page, api_visibility="private", show_progress="hidden")
    study.change(user_errors(lambda s, state: read(s, state, True)), [study, seen], page, api_visibility="private",
                 show_progress="hidden")

    def on_refresh(study_id, state):
        return gr.Dropdown(choices=study_choices(studio), value=study_id), *read(study_id, state, True)

    refresh.click(user_errors(on_refresh), [study, seen], [study, *page], api_visibility="private",
                  show_progress="hidden")
    if shown is not None:
        shown.select(user_errors(lambda s, state: (gr.Dropdown(choices=run_choices(studio)),
                                                   *on_refresh(s, state))),
                     [study, seen], [template, study, *page], api_visibility="private", show_progress="hidden")

    @user_errors
    def on_suggest(source, template_id, *form_values):
        config, _ = base_config(studio, forms, source, template_id, list(form_values))
        suggested = studio.suggested_space(config)
        return (json.dumps(suggested["space"], indent=2),
                gr.Dropdown(choices=suggested["objectives"], value=suggested["objectives"][0]))

    suggest.click(on_suggest, [base, template, *form_components(forms)], [space, objective], api_visibility="private")

    @user_errors
    def on_start(source, template_id, space_text, objective_name, direction_name, sampler_name, pruner_name, trials_n,
                 minutes, seed_n, study_name, state, *form_values):
        config, template_name = base_config(studio, forms, source, template_id, list(form_values))
        search = {"name": (study_name or "").strip() or (f"{template_name} search" if template_name else ""),
                  "template": template_id if source == "run" else config, "space": parse_space(space_text),
                  "objective": objective_name, "direction": direction_name or "", "sampler": sampler_name,
                  "pruner": pruner_name, "n_trials": int(trials_n or 0), "timeout_minutes": float(minutes or 0),
                  "seed": int(seed_n or 0)}
        study_id = studio.start_search(search)["study_id"]
        notify("search.started", study_id=study_id)
        return gr.Dropdown(choices=study_choices(studio), value=study_id), *read(study_id, state, True)

    start.click(on_start, [base, template, space, objective, direction, sampler, pruner, n_trials, timeout, seed, name,
                           seen, *form_components(forms)], [study, *page], api_visibility="private")

    def control(action):
        @user_errors
        def act(study_id, extra_trials, state):
            if not study_id:
                raise ui_error("error.choose_study")
            if action == "pause":
                studio.pause_search(study_id)
            elif action == "resume":
                studio.resume_search(study_id, int(extra_trials or 0))
            else:
                studio.cancel_search(study_id)
            return gr.Dropdown(choices=study_choices(studio), value=study_id), *read(study_id, state, True)
        return act

    for button, action in ((pause, "pause"), (resume, "resume"), (cancel, "cancel")):
        button.click(control(action), [study, extra, seen], [study, *page], api_visibility="private",
                     show_progress="hidden")

    @user_errors
    def on_launch_best(study_id, steps):
        if not study_id:
            raise ui_error("error.choose_study")
        queued = studio.promote_best(study_id, int(steps or 0))
        notify("search.promoted", run_id=queued["run_id"])

    launch_best.click(on_launch_best, [study, more_steps], None, api_visibility="private")
    base.change(lambda source: gr.Dropdown(visible=source == "run"), base, template, api_visibility="private")
    return SearchTab(timer=timer, clone_best=clone_best, best_run=best_run)

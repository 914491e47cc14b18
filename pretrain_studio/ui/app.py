"""build_app(studio): the Gradio Blocks app, its tabs wired together, the language switch, and the API endpoints.

The header holds the English | 简体中文 switch (i18n.py says how the translation works and why); every
component is built in English and relabelled on page load when the browser stored another language."""

from __future__ import annotations

import gradio as gr

from ..studio import Studio
from .api import register_api
from .compare_tab import build_compare_tab
from .corpus_tab import build_corpus_tab, corpus_choices, describe_corpus
from .dataset_tab import build_dataset_tab, dataset_choices, describe_dataset
from .errors import ui_error, user_errors
from .finetune_tab import base_model_choices as finetune_bases
from .finetune_tab import build_finetune_tab
from .i18n import language_switch, widget, wire_language
from .monitor_tab import SERIAL, build_monitor_tab, run_choices
from .pretrain_tab import base_model_choices, build_pretrain_tab
from .queue_tab import build_queue_tab
from .runs_table_tab import build_runs_table_tab
from .search_tab import build_search_tab
from .try_entities import tagger_choices
from .try_tab import build_try_tab, classifier_choices, model_choices


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Pretrain Studio") as app:
        with gr.Row(equal_height=True):
            widget(gr.Markdown, text=("app.header", {"root": studio.workspace.root}))
            language, stored_language = language_switch()
        with gr.Tabs() as tabs:
            with widget(gr.Tab, label="tab.corpora", id="corpora") as corpora_page:
                corpus_tab = build_corpus_tab(studio)
            with widget(gr.Tab, label="tab.pretrain", id="pretrain") as pretrain_page:
                pretrain_tab = build_pretrain_tab(studio)
            with widget(gr.Tab, label="tab.datasets", id="datasets") as datasets_page:
                dataset_tab = build_dataset_tab(studio)
            with widget(gr.Tab, label="tab.finetune", id="finetune") as finetune_page:
                finetune_tab = build_finetune_tab(studio)
            # Runs holds the live monitor (where a launch lands) and the experiment-management screens.
            with widget(gr.Tab, label="tab.runs", id="runs") as runs_page, gr.Tabs() as runs_tabs:
                with widget(gr.Tab, label="tab.live", id="live") as live_page:
                    monitor_tab = build_monitor_tab(studio)
                with widget(gr.Tab, label="tab.all_runs", id="all-runs") as all_runs_page:
                    runs_table = build_runs_table_tab(studio, shown=all_runs_page)
                with widget(gr.Tab, label="tab.compare", id="compare") as compare_page:
                    build_compare_tab(studio, shown=compare_page)
                forms = {"pretrain": pretrain_tab.inputs, "finetune": finetune_tab.inputs}
                with widget(gr.Tab, label="tab.queue", id="queue") as queue_page:
                    queue_tab = build_queue_tab(studio, forms, shown=queue_page)
                with widget(gr.Tab, label="tab.search", id="search") as search_page:
                    search_tab = build_search_tab(studio, forms, shown=search_page)
            with widget(gr.Tab, label="tab.try", id="try") as try_page:
                try_tab = build_try_tab(studio)
        register_api(studio)

        # --- timers tick only for a tab that is shown ------------------------------------------------
        # Gradio has no "tab hidden" event, so the shown pair (top tab, Runs sub-tab) is kept here and
        # updated by every select and by the handlers below that switch tabs themselves.
        view = gr.State({"top": "corpora", "runs": "live"})

        def show(**where):
            def switch(current):
                now = {**current, **where}
                on_runs = now["top"] == "runs"
                return (now, on_runs and now["runs"] == "live", gr.Timer(active=on_runs and now["runs"] == "queue"),
                        gr.Timer(active=on_runs and now["runs"] == "search"))
            return switch

        def follow(listener, **where):
            """On `listener` (a tab's `.select`, or an event's `.then`): record the tab now shown, start or
            stop the timers, and poll the monitor once."""
            # In the monitor's serial queue too: choosing Runs also selects its shown sub-tab, and two switches
            # in parallel would both start from the old view, the later one undoing the earlier.
            monitor_tab.refresh_after(listener(show(**where), view, [view, monitor_tab.watching, queue_tab.timer,
                                                                     search_tab.timer],
                                               api_visibility="private", show_progress="hidden", **SERIAL))

        for page, where in [(corpora_page, {"top": "corpora"}), (pretrain_page, {"top": "pretrain"}),
                            (datasets_page, {"top": "datasets"}), (finetune_page, {"top": "finetune"}),
                            (runs_page, {"top": "runs"}), (try_page, {"top": "try"}), (live_page, {"runs": "live"}),
                            (all_runs_page, {"runs": "all-runs"}), (compare_page, {"runs": "compare"}),
                            (queue_page, {"runs": "queue"}), (search_page, {"runs": "search"})]:
            follow(page.select, **where)

        # --- wiring between tabs: lists refresh when they may have changed ---------
        corpus_tab.upload_event.then(lambda: gr.Dropdown(choices=corpus_choices(studio)), None,
                                     pretrain_tab.corpus, api_visibility="private")

        def refresh_pretrain():
            return (gr.Dropdown(choices=corpus_choices(studio)), gr.Dropdown(choices=base_model_choices(studio)),
                    gr.Dropdown(choices=dataset_choices(studio)))

        downstream = pretrain_tab.inputs["downstream_datasets"]  # labelled datasets checked while pretraining
        pretrain_page.select(refresh_pretrain, None, [pretrain_tab.corpus, pretrain_tab.inputs["base_model"],
                                                      downstream], api_visibility="private")
        for page in (runs_page, live_page):
            page.select(lambda: gr.Dropdown(choices=run_choices(studio)), None, monitor_tab.run,
                        api_visibility="private")
        try_page.select(lambda: (gr.Dropdown(choices=model_choices(studio)),
                                 gr.Dropdown(choices=classifier_choices(studio)),
                                 gr.Dropdown(choices=tagger_choices(studio)),
                                 gr.Dropdown(choices=tagger_choices(studio))),
                        None, [try_tab.model, try_tab.classifier, try_tab.tagger, try_tab.other_taggers],
                        api_visibility="private")
        dataset_tab.upload_event.then(lambda: (gr.Dropdown(choices=dataset_choices(studio)),
                                               gr.Dropdown(choices=dataset_choices(studio))), None,
                                      [finetune_tab.dataset, downstream], api_visibility="private")
        finetune_page.select(lambda: (gr.Dropdown(choices=dataset_choices(studio)),
                                      gr.Dropdown(choices=finetune_bases(studio))),
                             None, [finetune_tab.dataset, finetune_tab.base_model], api_visibility="private")

        def show_launched(run_id):
            if not run_id:
                return gr.skip(), gr.skip(), gr.skip()
            return (gr.Dropdown(choices=run_choices(studio), value=run_id), gr.Tabs(selected="runs"),
                    gr.Tabs(selected="live"))

        def on_page_load():
            # A reload or a second tab opens on the run that is training now (else the newest one).
            runs = studio.list_runs()
            active = [r for r in runs if r["status"] == "running"] or runs
            return gr.Dropdown(choices=run_choices(studio), value=active[0]["run_id"] if active else None)

        # The language first: the corpus and dataset summaries are then written in it.
        language_loaded, _ = wire_language(app, language, stored_language)
        app.load(on_page_load, None, monitor_tab.run, api_visibility="private")
        language_loaded.then(lambda cid: describe_corpus(studio, cid), corpus_tab.corpus_view, corpus_tab.outputs,
                             api_visibility="private")
        language_loaded.then(lambda did: describe_dataset(studio, did), dataset_tab.dataset_view,
                             dataset_tab.outputs, api_visibility="private")

        for launcher in (pretrain_tab, finetune_tab):
            follow(launcher.launch_event.then(show_launched, launcher.launched_run,
                                              [monitor_tab.run, tabs, runs_tabs], api_visibility="private").then,
                   top="runs", runs="live")

        # --- a run's page: watch it live, or clone its settings into the launch form ----------
        follow(runs_table.page.watch.click(
            user_errors(lambda run_id: (gr.Dropdown(choices=run_choices(studio), value=run_id),
                                        gr.Tabs(selected="live"))),
            runs_table.run, [monitor_tab.run, runs_tabs], api_visibility="private").then, runs="live")
        form_components = [c for inputs in forms.values() for c in inputs.values()]
        method, learning_rate = finetune_tab.inputs["method"], finetune_tab.inputs["learning_rate"]
        # The Fine-tune form sets the method's default learning rate whenever the method changes, which it
        # does in reply to the clone's new method; `pending_rate` puts the cloned rate back after that reset.
        pending_rate = gr.State(None)
        cloned = runs_table.page.clone.click(
            user_errors(lambda run_id, current: clone_into_form(studio, forms, run_id, current)),
            [runs_table.run, method], [tabs, *form_components, pending_rate], api_visibility="private")
        follow(cloned.then, top="form")  # Pretrain or Fine-tune: either way neither timer's tab is shown
        # The Search tab's best trial, likewise: its run holds the whole launch config, sampled settings included.
        cloned_best = search_tab.clone_best.click(
            user_errors(lambda run_id, current: clone_into_form(studio, forms, run_id, current)),
            [search_tab.best_run, method], [tabs, *form_components, pending_rate], api_visibility="private")
        follow(cloned_best.then, top="form")

        def restore_rate(current, pending):
            if pending is None or current == pending:
                return gr.skip(), gr.skip()
            return pending, None

        learning_rate.change(restore_rate, [learning_rate, pending_rate], [learning_rate, pending_rate],
                             api_visibility="private", show_progress="hidden")
    return app


def clone_into_form(studio: Studio, forms: dict[str, dict], run_id: str | None, current_method: str) -> list:
    """The launch form of the run's kind filled with its saved configuration (named "<name> (copy)"), the
    tab switched to that form (the other form is left as it is), and the learning rate to restore when
    the Fine-tune form's method change resets it (None when no reset will happen)."""
    if not run_id:
        raise ui_error("error.choose_run")
    run = studio.run_status(run_id)
    config = {**run["config"], "name": f"{run['name']} (copy)"}
    choices = {"pretrain": {"corpus_id": corpus_choices(studio), "base_model": base_model_choices(studio),
                            "downstream_datasets": dataset_choices(studio)},
               "finetune": {"dataset_id": dataset_choices(studio), "base_model": finetune_bases(studio)}}
    updates = []
    for kind, inputs in forms.items():
        for key, component in inputs.items():
            if kind != run["kind"] or key not in config:
                updates.append(gr.skip())
            elif key in choices[kind]:
                updates.append(gr.Dropdown(choices=choices[kind][key], value=config[key]))
            else:
                updates.append(type(component)(value=config[key]))
    method, rate = config.get("method"), config.get("learning_rate")
    # A method change resets the form's rate to 0 (auto, finetune_tab.on_method): a clone's own rate is put back.
    reset = run["kind"] == "finetune" and method != current_method and bool(rate)
    return [gr.Tabs(selected="pretrain" if run["kind"] == "pretrain" else "finetune"), *updates,
            rate if reset else None]

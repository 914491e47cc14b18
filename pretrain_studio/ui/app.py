"""build_app(studio): the Gradio Blocks app, its tabs wired together, and the API endpoints."""

from __future__ import annotations

import gradio as gr

from ..api import register_api
from ..studio import Studio
from .corpus_tab import build_corpus_tab, corpus_choices, describe_corpus
from .monitor_tab import build_monitor_tab, run_choices
from .pretrain_tab import base_model_choices, build_pretrain_tab
from .try_tab import build_try_tab, model_choices


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Pretrain Studio") as app:
        gr.Markdown(f"# Pretrain Studio\nMLM pretraining of BERT-style encoders · workspace `{studio.workspace.root}`")
        with gr.Tabs() as tabs:
            with gr.Tab("Corpora", id="corpora"):
                corpus_tab = build_corpus_tab(studio)
            with gr.Tab("Pretrain", id="pretrain") as pretrain_page:
                pretrain_tab = build_pretrain_tab(studio)
            with gr.Tab("Runs", id="runs") as runs_page:
                monitor_tab = build_monitor_tab(studio)
            with gr.Tab("Try", id="try") as try_page:
                try_tab = build_try_tab(studio)
        register_api(studio)

        # --- wiring between tabs: lists refresh when they may have changed ---------
        corpus_tab.upload_event.then(lambda: gr.Dropdown(choices=corpus_choices(studio)), None,
                                     pretrain_tab.corpus, api_visibility="private")

        def refresh_pretrain():
            return gr.Dropdown(choices=corpus_choices(studio)), gr.Dropdown(choices=base_model_choices(studio))

        pretrain_page.select(refresh_pretrain, None, [pretrain_tab.corpus, pretrain_tab.inputs["base_model"]],
                             api_visibility="private")
        runs_page.select(lambda: gr.Dropdown(choices=run_choices(studio)), None, monitor_tab.run,
                         api_visibility="private")
        try_page.select(lambda: gr.Dropdown(choices=model_choices(studio)), None, try_tab.model,
                        api_visibility="private")

        def show_launched(run_id):
            if not run_id:
                return gr.skip(), gr.skip()
            return gr.Dropdown(choices=run_choices(studio), value=run_id), gr.Tabs(selected="runs")

        def on_page_load():
            # A reload or a second tab opens on the run that is training now (else the newest one).
            runs = studio.list_runs()
            active = [r for r in runs if r["status"] == "running"] or runs
            return gr.Dropdown(choices=run_choices(studio), value=active[0]["run_id"] if active else None)

        app.load(on_page_load, None, monitor_tab.run, api_visibility="private")
        app.load(lambda cid: describe_corpus(studio, cid), corpus_tab.corpus_view, corpus_tab.outputs,
                 api_visibility="private")

        pretrain_tab.launch_event.then(show_launched, pretrain_tab.launched_run, [monitor_tab.run, tabs],
                                       api_visibility="private")
    return app

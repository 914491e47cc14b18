"""build_app(studio): the Gradio Blocks app, its tabs wired together, and the API endpoints."""

from __future__ import annotations

import gradio as gr

from ..api import register_api
from ..studio import Studio
from .corpus_tab import build_corpus_tab, corpus_choices, describe_corpus
from .dataset_tab import build_dataset_tab, dataset_choices, describe_dataset
from .finetune_tab import base_model_choices as finetune_bases
from .finetune_tab import build_finetune_tab
from .monitor_tab import build_monitor_tab, run_choices
from .pretrain_tab import base_model_choices, build_pretrain_tab
from .try_tab import build_try_tab, classifier_choices, model_choices


def build_app(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Pretrain Studio") as app:
        gr.Markdown(f"# Pretrain Studio\nPretrain and fine-tune BERT-style encoders · workspace "
                    f"`{studio.workspace.root}`")
        with gr.Tabs() as tabs:
            with gr.Tab("Corpora", id="corpora"):
                corpus_tab = build_corpus_tab(studio)
            with gr.Tab("Pretrain", id="pretrain") as pretrain_page:
                pretrain_tab = build_pretrain_tab(studio)
            with gr.Tab("Datasets", id="datasets"):
                dataset_tab = build_dataset_tab(studio)
            with gr.Tab("Fine-tune", id="finetune") as finetune_page:
                finetune_tab = build_finetune_tab(studio)
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
        try_page.select(lambda: (gr.Dropdown(choices=model_choices(studio)),
                                 gr.Dropdown(choices=classifier_choices(studio))),
                        None, [try_tab.model, try_tab.classifier], api_visibility="private")
        dataset_tab.upload_event.then(lambda: gr.Dropdown(choices=dataset_choices(studio)), None,
                                      finetune_tab.dataset, api_visibility="private")
        finetune_page.select(lambda: (gr.Dropdown(choices=dataset_choices(studio)),
                                      gr.Dropdown(choices=finetune_bases(studio))),
                             None, [finetune_tab.dataset, finetune_tab.base_model], api_visibility="private")

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
        app.load(lambda did: describe_dataset(studio, did), dataset_tab.dataset_view, dataset_tab.outputs,
                 api_visibility="private")

        for launcher in (pretrain_tab, finetune_tab):
            launcher.launch_event.then(show_launched, launcher.launched_run, [monitor_tab.run, tabs],
                                       api_visibility="private")
    return app

"""Try tab: fill-mask on a trained MLM model, answers as a bar chart and a table."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import user_errors
from .plots import topk_figure


@dataclass
class TryTab:
    model: gr.Dropdown


def model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.mlm_models()]


def build_try_tab(studio: Studio) -> TryTab:
    choices = model_choices(studio)
    with gr.Row():
        model = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Model (completed run)",
                            allow_custom_value=True, scale=4)
        refresh = gr.Button("Refresh list", scale=1)
    text = gr.Textbox(label="Text with one or more [MASK] tokens", value="She was the [MASK] of the family.")
    top_k = gr.Slider(1, 20, value=5, step=1, label="Top k")
    run = gr.Button("Fill mask", variant="primary")
    chart = gr.Plot(label="First mask")
    table = gr.Dataframe(label="Predictions", interactive=False)

    @user_errors
    def on_fill(model_id, masked_text, k):
        if not model_id:
            raise gr.Error("choose a model: complete a pretraining run first")
        answers = studio.fill_mask(model_id, masked_text, int(k))
        rows = [{"mask": i + 1, "token": a["token"], "probability": round(a["score"], 4), "sequence": a["sequence"]}
                for i, per_mask in enumerate(answers) for a in per_mask]
        return topk_figure(answers[0], "mask 1"), pd.DataFrame(rows)

    run.click(on_fill, [model, text, top_k], [chart, table], api_visibility="private")
    text.submit(on_fill, [model, text, top_k], [chart, table], api_visibility="private")
    refresh.click(lambda: gr.Dropdown(choices=model_choices(studio)), None, model, api_visibility="private")
    return TryTab(model=model)

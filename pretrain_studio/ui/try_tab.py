"""Try tab: fill-mask on a pretrained MLM model, and the classification playground for fine-tuned runs
(one text -> label probabilities; a file -> downloadable predictions, and metrics when it has labels)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import user_errors
from .plots import confusion_figure, probabilities_figure, topk_figure


@dataclass
class TryTab:
    model: gr.Dropdown
    classifier: gr.Dropdown


def model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.mlm_models()]


def classifier_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.classifier_models()]


def build_try_tab(studio: Studio) -> TryTab:
    gr.Markdown("### Fill-mask")
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
    classifier = build_classification_playground(studio)
    return TryTab(model=model, classifier=classifier)


def build_classification_playground(studio: Studio) -> gr.Dropdown:
    gr.Markdown("### Classify")
    choices = classifier_choices(studio)
    classifier = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, allow_custom_value=True,
                             label="Classifier (fine-tuning run)")
    with gr.Row():
        text = gr.Textbox(label="Text", lines=2, scale=3)
        pair = gr.Textbox(label="Second text (sentence-pair models only)", lines=2, scale=2)
    classify = gr.Button("Classify", variant="primary")
    probabilities = gr.Plot(label="Label probabilities")

    @user_errors
    def on_classify(model_id, value, second):
        if not model_id:
            raise gr.Error("choose a classifier: complete a fine-tuning run first")
        result = studio.classify(model_id, value, second or None)
        return probabilities_figure(result["scores"])

    classify.click(on_classify, [classifier, text, pair], probabilities, api_visibility="private")
    text.submit(on_classify, [classifier, text, pair], probabilities, api_visibility="private")

    gr.Markdown("#### Predict a file\nA `.csv`/`.tsv`/`.jsonl`/`.txt` file of texts; with a label column "
                "the accuracy, confusion matrix and misclassified rows are shown too.")
    with gr.Row():
        upload = gr.File(label="File of texts")
        text_column = gr.Textbox(label="Text column", placeholder="text")
        label_column = gr.Textbox(label="Label column (optional)", placeholder="label")
    predict = gr.Button("Predict file")
    download = gr.File(label="Predictions (CSV)")
    summary = gr.Markdown()
    matrix = gr.Plot(label="Confusion matrix")
    wrong = gr.Dataframe(label="Misclassified rows", wrap=True, interactive=False)

    @user_errors
    def on_predict(model_id, path, column, label):
        if not model_id:
            raise gr.Error("choose a classifier first")
        result = studio.predict_file(model_id, path, column or None, label or None)
        metrics = result["metrics"]
        if metrics is None:
            return result["file"], f"Predicted {result['rows']:,} rows.", None, None
        text_summary = (f"Predicted {result['rows']:,} rows: accuracy **{metrics['accuracy']:.4f}**, "
                        f"macro-F1 **{metrics['f1']:.4f}**, {len(result['misclassified']):,} misclassified shown.")
        return (result["file"], text_summary, confusion_figure(metrics["confusion_matrix"], metrics["labels"]),
                pd.DataFrame(result["misclassified"]))

    predict.click(on_predict, [classifier, upload, text_column, label_column], [download, summary, matrix, wrong],
                  api_visibility="private")
    return classifier

"""Try tab: fill-mask on a pretrained MLM model, the classification playground for fine-tuned runs
(one text -> label probabilities; a file -> downloadable predictions, and metrics when it has labels), and the
named-entity playground (try_entities.py)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import ui_error, user_errors
from .i18n import t, translate_columns, widget
from .plots import confusion_figure, probabilities_figure, topk_figure
from .try_entities import build_entity_playground


@dataclass
class TryTab:
    model: gr.Dropdown
    classifier: gr.Dropdown
    tagger: gr.Dropdown
    other_taggers: gr.Dropdown


def model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.mlm_models()]


def classifier_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.classifier_models()]


def build_try_tab(studio: Studio) -> TryTab:
    widget(gr.Markdown, text="try.fill_title")
    choices = model_choices(studio)
    with gr.Row():
        model = widget(gr.Dropdown, choices=choices, value=choices[0][1] if choices else None, label="try.model",
                       allow_custom_value=True, scale=4)
        refresh = widget(gr.Button, text="monitor.refresh", scale=1)
    text = widget(gr.Textbox, label="try.masked_text", value="She was the [MASK] of the family.")
    top_k = widget(gr.Slider, minimum=1, maximum=20, value=5, step=1, label="try.top_k")
    run = widget(gr.Button, text="try.fill", variant="primary")
    chart = widget(gr.Plot, label="try.first_mask")
    table = widget(gr.Dataframe, label="try.predictions", interactive=False)

    @user_errors
    def on_fill(model_id, masked_text, k):
        if not model_id:
            raise ui_error("error.choose_model")
        answers = studio.fill_mask(model_id, masked_text, int(k))
        rows = [{"mask": i + 1, "token": a["token"], "probability": round(a["score"], 4), "sequence": a["sequence"]}
                for i, per_mask in enumerate(answers) for a in per_mask]
        return topk_figure(answers[0], t("try.mask_title", number=1)), translate_columns(pd.DataFrame(rows))

    run.click(on_fill, [model, text, top_k], [chart, table], api_visibility="private")
    text.submit(on_fill, [model, text, top_k], [chart, table], api_visibility="private")
    refresh.click(lambda: gr.Dropdown(choices=model_choices(studio)), None, model, api_visibility="private")
    classifier = build_classification_playground(studio)
    tagger, other_taggers = build_entity_playground(studio)
    return TryTab(model=model, classifier=classifier, tagger=tagger, other_taggers=other_taggers)


def build_classification_playground(studio: Studio) -> gr.Dropdown:
    widget(gr.Markdown, text="try.classify_title")
    choices = classifier_choices(studio)
    classifier = widget(gr.Dropdown, choices=choices, value=choices[0][1] if choices else None,
                        allow_custom_value=True, label="try.classifier")
    with gr.Row():
        text = widget(gr.Textbox, label="try.text", lines=2, scale=3)
        pair = widget(gr.Textbox, label="try.pair", lines=2, scale=2)
    classify = widget(gr.Button, text="try.classify", variant="primary")
    probabilities = widget(gr.Plot, label="try.probabilities")

    @user_errors
    def on_classify(model_id, value, second):
        if not model_id:
            raise ui_error("error.choose_classifier")
        result = studio.classify(model_id, value, second or None)
        return probabilities_figure(result["scores"])

    classify.click(on_classify, [classifier, text, pair], probabilities, api_visibility="private")
    text.submit(on_classify, [classifier, text, pair], probabilities, api_visibility="private")

    widget(gr.Markdown, text="try.predict_intro")
    with gr.Row():
        upload = widget(gr.File, label="try.file")
        text_column = widget(gr.Textbox, label="dataset.text_column", placeholder="text")
        label_column = widget(gr.Textbox, label="try.label_column", placeholder="label")
    predict = widget(gr.Button, text="try.predict")
    download = widget(gr.File, label="try.download")
    summary = gr.Markdown()
    matrix = widget(gr.Plot, label="monitor.confusion")
    wrong = widget(gr.Dataframe, label="try.misclassified", wrap=True, interactive=False)

    @user_errors
    def on_predict(model_id, path, column, label):
        if not model_id:
            raise ui_error("error.choose_classifier_first")
        result = studio.predict_file(model_id, path, column or None, label or None)
        metrics = result["metrics"]
        if metrics is None:
            return result["file"], t("try.predicted", rows=f"{result['rows']:,}"), None, None
        text_summary = t("try.predicted_scored", rows=f"{result['rows']:,}", accuracy=f"{metrics['accuracy']:.4f}",
                         f1=f"{metrics['f1']:.4f}", wrong=f"{len(result['misclassified']):,}")
        return (result["file"], text_summary, confusion_figure(metrics["confusion_matrix"], metrics["labels"]),
                pd.DataFrame(result["misclassified"]))

    predict.click(on_predict, [classifier, upload, text_column, label_column], [download, summary, matrix, wrong],
                  api_visibility="private")
    return classifier

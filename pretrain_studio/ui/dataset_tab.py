"""Datasets tab: upload a labelled dataset for fine-tuning, map its columns, see labels, balance and overlaps."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import user_errors
from .i18n import after_switch, t, widget
from .plots import label_distribution_figure


@dataclass
class DatasetTab:
    upload_event: object
    dataset_view: gr.Dropdown
    outputs: list


def dataset_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(t("choice.dataset", name=d["name"], rows=f"{sum(d['splits'].values()):,}", labels=len(d["labels"])),
             d["dataset_id"]) for d in studio.list_datasets()]


def describe_dataset(studio: Studio, dataset_id: str):
    if not dataset_id:
        return "", None, None
    d = studio.get_dataset(dataset_id)
    stats = d["stats"]
    overlaps = ", ".join(f"{pair}: {n}" for pair, n in d["cross_split_duplicates"].items() if n) or t("dataset.none")
    columns = stats.get("columns", {})
    summary = t("dataset.summary", name=d["name"], dataset_id=d["dataset_id"],
                splits=", ".join(f"{s} **{n:,}**" for s, n in d["splits"].items()),
                split_made=t("dataset.split_made") if stats.get("split_made") else "", count=len(d["labels"]),
                labels=", ".join(d["labels"][:30]) + (" ..." if len(d["labels"]) > 30 else ""),
                imbalance=f"{d['imbalance']:.2f}", overlaps=overlaps, text=columns.get("text"),
                pair=t("dataset.pair_column", column=columns.get("text_pair")) if columns.get("text_pair") else "",
                label=columns.get("label"))
    examples = pd.DataFrame(stats.get("examples", []))
    return summary, label_distribution_figure(d["counts"]), examples


def build_dataset_tab(studio: Studio) -> DatasetTab:
    widget(gr.Markdown, text="dataset.intro")
    with gr.Row():
        train_file = widget(gr.File, label="dataset.train_file")
        validation_file = widget(gr.File, label="dataset.validation_file")
        test_file = widget(gr.File, label="dataset.test_file")
    with gr.Row():
        name = widget(gr.Textbox, label="dataset.name", placeholder="dataset.name_placeholder")
        text_column = widget(gr.Dropdown, label="dataset.text_column", allow_custom_value=True, choices=[])
        pair_column = widget(gr.Dropdown, label="dataset.pair_column_label", allow_custom_value=True, choices=[])
        label_column = widget(gr.Dropdown, label="dataset.label_column", allow_custom_value=True, choices=[])
        seed = widget(gr.Number, value=42, precision=0, label="dataset.seed")
    add = widget(gr.Button, text="dataset.add", variant="primary")
    message = gr.Markdown()
    choices = dataset_choices(studio)
    dataset_view = widget(gr.Dropdown, choices=lambda: dataset_choices(studio),
                          value=choices[0][1] if choices else None, label="label.dataset", interactive=True)
    summary = gr.Markdown()
    with gr.Row():
        distribution = widget(gr.Plot, label="dataset.distribution")
        examples = widget(gr.Dataframe, label="dataset.examples", wrap=True, interactive=False)

    @user_errors
    def on_train_file(path):
        if not path:
            return gr.skip(), gr.skip(), gr.skip()
        info = studio.inspect_dataset_file(path)
        columns = info["columns"]
        guess = info.get("guess", {})
        return (gr.Dropdown(choices=columns, value=guess.get("text")),
                gr.Dropdown(choices=[""] + columns, value=""),
                gr.Dropdown(choices=columns, value=guess.get("label")))

    train_file.change(on_train_file, train_file, [text_column, pair_column, label_column], api_visibility="private")

    @user_errors
    def on_add(dataset_name, train, validation, test, text, pair, label, split_seed):
        d = studio.upload_dataset(dataset_name, train, text or None, label or None, validation, test, pair or None,
                                  seed=int(split_seed or 42))
        return (t("dataset.added", name=d["name"], splits=", ".join(f"{s} {n:,}" for s, n in d["splits"].items()),
                  labels=len(d["labels"])), gr.Dropdown(choices=dataset_choices(studio), value=d["dataset_id"]))

    event = add.click(on_add, [name, train_file, validation_file, test_file, text_column, pair_column, label_column,
                               seed], [message, dataset_view], api_visibility="private")
    outputs = [summary, distribution, examples]
    dataset_view.change(user_errors(lambda did: describe_dataset(studio, did)), dataset_view, outputs,
                        api_visibility="private")
    after_switch(user_errors(lambda did: describe_dataset(studio, did)), dataset_view, outputs,
                 on_load=False)  # app.py describes it after the page load (and the language) anyway
    return DatasetTab(upload_event=event, dataset_view=dataset_view, outputs=outputs)

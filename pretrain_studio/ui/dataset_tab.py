"""Datasets tab: upload a labelled dataset for fine-tuning, map its columns, see labels, balance and overlaps; for a
token-labelled (NER) dataset the tag scheme, entities per type, sentence lengths and tag problems."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import user_errors
from .i18n import after_switch, t, widget
from .plots import label_distribution_figure

TASK_CHOICES = (("dataset.task_auto", "auto"), ("dataset.task_sequence", "sequence_classification"),
                ("dataset.task_token", "token_classification"))


@dataclass
class DatasetTab:
    upload_event: object
    dataset_view: gr.Dropdown
    outputs: list


def dataset_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(t("choice.dataset", name=d["name"], rows=f"{sum(d['splits'].values()):,}", labels=len(d["labels"])),
             d["dataset_id"]) for d in studio.list_datasets()]


def describe_token_dataset(d: dict):
    """Summary, entities per type per split (a chart) and the sentence length histogram (a table)."""
    stats = d["stats"]
    problems = stats.get("tag_problems") or {}
    unseen = d.get("unseen_test_entities")
    split_made = (t("dataset.split_by", unit=stats["split_by"]) if stats.get("split_made") else "")
    summary = t("dataset.token_summary", name=d["name"], dataset_id=d["dataset_id"],
                splits=", ".join(f"{s} **{n:,}**" for s, n in d["splits"].items()), split_made=split_made,
                tokens=", ".join(f"{s} {n:,}" for s, n in (d.get("tokens") or {}).items()),
                characters=t("dataset.characters") if d.get("character_level") else "",
                scheme=d.get("tag_scheme"),
                entities=", ".join(f"{k} {n:,}" for k, n in d["counts"].get("train", {}).items()),
                unseen="-" if unseen is None else f"{unseen:.1%}", longest=d.get("longest_sentence"),
                problems=problems.get("message") or t("dataset.no_problems"))
    lengths = pd.DataFrame({t("dataset.lengths"): list(d["length_histogram"]),
                            "n": list(d["length_histogram"].values())})
    return summary, label_distribution_figure(d["counts"]), lengths


def describe_dataset(studio: Studio, dataset_id: str):
    if not dataset_id:
        return "", None, None
    d = studio.get_dataset(dataset_id)
    if d["task"] == "token_classification":
        return describe_token_dataset(d)
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
    widget(gr.Markdown, text="dataset.intro_tokens")
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
        task = widget(gr.Dropdown, choices=lambda: [(t(key), value) for key, value in TASK_CHOICES], value="auto",
                      label="dataset.task")
    kind_note = gr.Markdown()
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
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        info = studio.inspect_dataset_file(path)
        columns = info["columns"]
        guess = info.get("guess", {})
        tokens = info.get("task") == "token_classification"
        return (gr.Dropdown(choices=columns, value=guess.get("text")),
                gr.Dropdown(choices=[""] + columns, value=""),
                gr.Dropdown(choices=columns, value=guess.get("label")),
                t("dataset.token_file", format=info["format"]) if tokens else "")

    train_file.change(on_train_file, train_file, [text_column, pair_column, label_column, kind_note],
                      api_visibility="private")

    @user_errors
    def on_add(dataset_name, train, validation, test, text, pair, label, split_seed, dataset_task="auto"):
        d = studio.upload_dataset(dataset_name, train, text or None, label or None, validation, test, pair or None,
                                  seed=int(split_seed or 42), task=dataset_task or "auto")
        splits = ", ".join(f"{s} {n:,}" for s, n in d["splits"].items())
        if d["task"] == "token_classification":
            added = t("dataset.added_tokens", name=d["name"], splits=splits, types=", ".join(d["entity_types"]),
                      scheme=d["tag_scheme"])
        else:
            added = t("dataset.added", name=d["name"], splits=splits, labels=len(d["labels"]))
        return added, gr.Dropdown(choices=dataset_choices(studio), value=d["dataset_id"])

    event = add.click(on_add, [name, train_file, validation_file, test_file, text_column, pair_column, label_column,
                               seed, task], [message, dataset_view], api_visibility="private")
    outputs = [summary, distribution, examples]
    dataset_view.change(user_errors(lambda did: describe_dataset(studio, did)), dataset_view, outputs,
                        api_visibility="private")
    after_switch(user_errors(lambda did: describe_dataset(studio, did)), dataset_view, outputs,
                 on_load=False)  # app.py describes it after the page load (and the language) anyway
    return DatasetTab(upload_event=event, dataset_view=dataset_view, outputs=outputs)

"""Datasets tab: upload a labelled dataset for fine-tuning, map its columns, see labels, balance and overlaps."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import user_errors
from .plots import label_distribution_figure


@dataclass
class DatasetTab:
    upload_event: object
    dataset_view: gr.Dropdown
    outputs: list


def dataset_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{d['name']} ({sum(d['splits'].values()):,} rows, {len(d['labels'])} labels)", d["dataset_id"])
            for d in studio.list_datasets()]


def describe_dataset(studio: Studio, dataset_id: str):
    if not dataset_id:
        return "", None, None
    d = studio.get_dataset(dataset_id)
    stats = d["stats"]
    overlaps = ", ".join(f"{pair}: {n}" for pair, n in d["cross_split_duplicates"].items() if n) or "none"
    columns = stats.get("columns", {})
    summary = (
        f"### {d['name']}\n`{d['dataset_id']}`  \n"
        f"Splits: {', '.join(f'{s} **{n:,}**' for s, n in d['splits'].items())}"
        f"{' (stratified split made with the seed)' if stats.get('split_made') else ''}  \n"
        f"{len(d['labels'])} labels: {', '.join(d['labels'][:30])}{' ...' if len(d['labels']) > 30 else ''}  \n"
        f"Class imbalance (largest / smallest class in train): **{d['imbalance']:.2f}**  \n"
        f"Texts in more than one split: {overlaps}  \n"
        f"Columns: text `{columns.get('text')}`"
        + (f", second text `{columns.get('text_pair')}`" if columns.get("text_pair") else "")
        + f", label `{columns.get('label')}`"
    )
    examples = pd.DataFrame(stats.get("examples", []))
    return summary, label_distribution_figure(d["counts"]), examples


def build_dataset_tab(studio: Studio) -> DatasetTab:
    gr.Markdown("Upload a labelled dataset for fine-tuning: `.csv`/`.tsv` (with or without a header row; "
                "headerless columns are `col1`, `col2`, ...), `.jsonl`, `.parquet`, or text lines "
                "`<label> <text>` / fastText `__label__<label> <text>`. Without validation or test files, "
                "a stratified split is made with the seed.")
    with gr.Row():
        train_file = gr.File(label="Training file")
        validation_file = gr.File(label="Validation file (optional)")
        test_file = gr.File(label="Test file (optional)")
    with gr.Row():
        name = gr.Textbox(label="Dataset name", placeholder="defaults to the training file's name")
        text_column = gr.Dropdown(label="Text column", allow_custom_value=True, choices=[])
        pair_column = gr.Dropdown(label="Second text column (sentence pairs, optional)", allow_custom_value=True,
                                  choices=[])
        label_column = gr.Dropdown(label="Label column", allow_custom_value=True, choices=[])
        seed = gr.Number(value=42, precision=0, label="Split seed")
    add = gr.Button("Add dataset", variant="primary")
    message = gr.Markdown()
    choices = dataset_choices(studio)
    dataset_view = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Dataset",
                               interactive=True)
    summary = gr.Markdown()
    with gr.Row():
        distribution = gr.Plot(label="Label distribution")
        examples = gr.Dataframe(label="Examples", wrap=True, interactive=False)

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
        return (f"Added **{d['name']}**: {', '.join(f'{s} {n:,}' for s, n in d['splits'].items())} rows, "
                f"{len(d['labels'])} labels."), gr.Dropdown(choices=dataset_choices(studio), value=d["dataset_id"])

    event = add.click(on_add, [name, train_file, validation_file, test_file, text_column, pair_column, label_column,
                               seed], [message, dataset_view], api_visibility="private")
    outputs = [summary, distribution, examples]
    dataset_view.change(user_errors(lambda did: describe_dataset(studio, did)), dataset_view, outputs,
                        api_visibility="private")
    return DatasetTab(upload_event=event, dataset_view=dataset_view, outputs=outputs)

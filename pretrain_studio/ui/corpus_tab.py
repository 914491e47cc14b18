"""Corpora tab: upload files as a corpus, see its statistics, length histogram and first rows."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..data.corpus import long_documents_note
from ..studio import Studio
from .errors import user_errors
from .plots import length_histogram_figure


@dataclass
class CorpusTab:
    upload_event: object  # the upload's event, so other tabs can refresh their corpus lists after it
    corpus_view: gr.Dropdown
    outputs: list  # summary, histogram, preview: what describe_corpus fills


def corpus_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{c['name']} ({c['documents']:,} docs)", c["corpus_id"]) for c in studio.list_corpora()]


def describe_corpus(studio: Studio, corpus_id: str):
    """Markdown summary, histogram and preview table of one corpus."""
    if not corpus_id:
        return "", None, None
    corpus = studio.get_corpus(corpus_id)
    stats = corpus["stats"]
    encodings = ", ".join(f"`{name}`: {enc}" for name, enc in corpus["encodings"].items())
    summary = (
        f"### {corpus['name']}\n"
        f"`{corpus['corpus_id']}`  \n"
        f"**{corpus['documents']:,}** documents · **{corpus['characters']:,}** characters · "
        f"**{corpus['words']:,}** words · {corpus['empty_lines']:,} empty lines skipped · "
        f"{corpus['duplicate_documents']:,} duplicate documents"
        f"{long_documents_note(corpus['long_documents'])}  \n"
        f"Files and encodings: {encodings}"
    )
    preview = pd.DataFrame({"first documents": [text[:300] for text in corpus["preview"]]})
    return summary, length_histogram_figure(stats.get("length_histogram", {})), preview


def build_corpus_tab(studio: Studio) -> CorpusTab:
    gr.Markdown("Upload one or more files as a corpus: `.txt`, `.jsonl`, `.csv`, `.tsv`, `.parquet`, "
                "optionally gzipped. Text that is not UTF-8 is read as a legacy 8-bit encoding and the "
                "encoding is shown.")
    with gr.Row():
        with gr.Column(scale=2):
            files = gr.File(label="Corpus files", file_count="multiple")
        with gr.Column(scale=1):
            name = gr.Textbox(label="Corpus name", placeholder="defaults to the first file's name")
            txt_mode = gr.Radio(["lines", "paragraphs"], value="lines", label=".txt documents are",
                                info="one document per line, or blank-line-separated paragraphs")
            text_column = gr.Textbox(label="Text column (.csv/.tsv/.jsonl/.parquet)",
                                     placeholder="text")
            upload = gr.Button("Add corpus", variant="primary")
    upload_message = gr.Markdown()
    choices = corpus_choices(studio)
    corpus_view = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Corpus",
                              interactive=True)
    summary = gr.Markdown()
    with gr.Row():
        histogram = gr.Plot(label="Document lengths")
        preview = gr.Dataframe(label="Preview", wrap=True, interactive=False)

    @user_errors
    def on_upload(paths, corpus_name, mode, column):
        corpus = studio.upload_corpus(paths or [], corpus_name, txt_mode=mode, text_column=column)
        message = (f"Added **{corpus['name']}**: {corpus['documents']:,} documents"
                   f"{long_documents_note(corpus['long_documents'])}.")
        return message, gr.Dropdown(choices=corpus_choices(studio), value=corpus["corpus_id"])

    event = upload.click(on_upload, [files, name, txt_mode, text_column], [upload_message, corpus_view],
                         api_visibility="private")
    corpus_view.change(user_errors(lambda cid: describe_corpus(studio, cid)), corpus_view,
                       [summary, histogram, preview], api_visibility="private")
    return CorpusTab(upload_event=event, corpus_view=corpus_view, outputs=[summary, histogram, preview])

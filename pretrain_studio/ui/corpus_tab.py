"""Corpora tab: upload files as a corpus, see its statistics, length histogram and first rows."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..data.corpus import MAX_DOCUMENT_CHARS, REMOVED_KEYS, SMALL_CORPUS_WORDS
from ..studio import Studio
from .errors import user_errors
from .i18n import after_switch, t, translate_columns, widget
from .plots import length_histogram_figure


@dataclass
class CorpusTab:
    upload_event: object  # the upload's event, so other tabs can refresh their corpus lists after it
    corpus_view: gr.Dropdown
    outputs: list  # summary, histogram, preview: what describe_corpus fills


def corpus_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(t("choice.corpus", name=c["name"], documents=f"{c['documents']:,}"), c["corpus_id"])
            for c in studio.list_corpora()]


def long_documents_note(count: int) -> str:
    """data.corpus.long_documents_note in the current language: "" when no document was cut."""
    return t("corpus.long_note", count=f"{count:,}", limit=f"{MAX_DOCUMENT_CHARS:,}") if count else ""


# Which upload option turned on the filter behind each key of stats["removed"].
_FILTER_OPTION = {"exact_duplicates": "dedupe", "near_duplicates": "near_duplicates",
                  "boilerplate_lines": "drop_boilerplate_lines", "gutenberg_boilerplate": "strip_gutenberg"}


def removed_line(removed: dict, cleaning: dict) -> str:
    """What the cleaning filters that were on removed (issue 16), e.g. "Cleaning removed: 12 exact duplicates ·
    40 boilerplate lines"; "" for a corpus ingested before they existed (its stats have no "removed")."""
    if not removed:
        return ""
    parts = [t(f"corpus.removed_{key}", count=f"{removed.get(key, 0):,}") for key in REMOVED_KEYS
             if cleaning.get(_FILTER_OPTION[key])]
    return t("corpus.removed", parts=" · ".join(parts)) if parts else t("corpus.no_cleaning")


def small_corpus_warning(words: int) -> str:
    """Before launch: a corpus under SMALL_CORPUS_WORDS is unlikely to pretrain an encoder from scratch that beats
    random weights downstream (data/corpus.py says where the number comes from); '' for a larger one."""
    if words >= SMALL_CORPUS_WORDS:
        return ""
    return t("corpus.small", words=f"{words:,}", threshold=f"{SMALL_CORPUS_WORDS:,}")


def describe_corpus(studio: Studio, corpus_id: str):
    """Markdown summary, histogram and preview table of one corpus."""
    if not corpus_id:
        return "", None, None
    corpus = studio.get_corpus(corpus_id)
    stats = corpus["stats"]
    encodings = ", ".join(f"`{name}`: {enc}" for name, enc in corpus["encodings"].items())
    summary = t("corpus.summary", name=corpus["name"], corpus_id=corpus["corpus_id"],
                documents=f"{corpus['documents']:,}", characters=f"{corpus['characters']:,}",
                words=f"{corpus['words']:,}", empty=f"{corpus['empty_lines']:,}",
                duplicates=f"{corpus['duplicate_documents']:,}", long=long_documents_note(corpus["long_documents"]),
                encodings=encodings)
    removed = removed_line(corpus.get("removed", {}), corpus.get("cleaning", {}))
    if removed:
        summary += "  \n" + removed
    if stats.get("cjk_characters"):  # Chinese (or Japanese) text: the character-level figures that matter
        summary += "  \n" + t("corpus.characters", cjk=f"{stats['cjk_characters']:,}",
                               share=f"{stats.get('cjk_share', 0):.1%}",
                               distinct=f"{stats.get('distinct_characters', 0):,}")
    warning = small_corpus_warning(corpus["words"])
    if warning:
        summary += "\n\n" + warning
    preview = translate_columns(pd.DataFrame({"first documents": [text[:300] for text in corpus["preview"]]}))
    return summary, length_histogram_figure(stats.get("length_histogram", {})), preview


def build_corpus_tab(studio: Studio) -> CorpusTab:
    widget(gr.Markdown, text="corpus.intro")
    with gr.Row():
        with gr.Column(scale=2):
            files = widget(gr.File, label="corpus.files", file_count="multiple")
        with gr.Column(scale=1):
            name = widget(gr.Textbox, label="corpus.name", placeholder="corpus.name_placeholder")
            txt_mode = widget(gr.Radio, choices=lambda: [(t("corpus.mode_lines"), "lines"),
                                                         (t("corpus.mode_paragraphs"), "paragraphs")],
                              value="lines", label="corpus.txt_mode", info="corpus.txt_mode_info")
            text_column = widget(gr.Textbox, label="corpus.text_column", placeholder="text")
            # Cleaning (issue 16): exact duplicates go by default; the other filters are asked for.
            dedupe = widget(gr.Checkbox, value=True, label="corpus.dedupe", info="corpus.dedupe_info")
            strip_gutenberg = widget(gr.Checkbox, value=False, label="corpus.strip_gutenberg",
                                     info="corpus.strip_gutenberg_info")
            boilerplate = widget(gr.Checkbox, value=False, label="corpus.drop_boilerplate",
                                 info="corpus.drop_boilerplate_info")
            near = widget(gr.Checkbox, value=False, label="corpus.near_duplicates", info="corpus.near_duplicates_info")
            upload = widget(gr.Button, text="corpus.add", variant="primary")
    upload_message = gr.Markdown()
    choices = corpus_choices(studio)
    corpus_view = widget(gr.Dropdown, choices=lambda: corpus_choices(studio), value=choices[0][1] if choices else None,
                         label="label.corpus", interactive=True)
    summary = gr.Markdown()
    with gr.Row():
        histogram = widget(gr.Plot, label="corpus.lengths")
        preview = widget(gr.Dataframe, label="corpus.preview", wrap=True, interactive=False)

    @user_errors
    def on_upload(paths, corpus_name, mode, column, dedupe_on=True, gutenberg_on=False, boilerplate_on=False,
                  near_on=False):
        corpus = studio.upload_corpus(paths or [], corpus_name, txt_mode=mode, text_column=column,
                                      dedupe=bool(dedupe_on), strip_gutenberg=bool(gutenberg_on),
                                      drop_boilerplate_lines=bool(boilerplate_on), near_duplicates=bool(near_on))
        message = t("corpus.added", name=corpus["name"], documents=f"{corpus['documents']:,}",
                    long=long_documents_note(corpus["long_documents"]))
        if any(corpus["removed"].values()):  # a corpus the filters left whole gets the message it always got
            message += " " + removed_line(corpus["removed"], corpus["cleaning"])
        return message, gr.Dropdown(choices=corpus_choices(studio), value=corpus["corpus_id"])

    event = upload.click(on_upload, [files, name, txt_mode, text_column, dedupe, strip_gutenberg, boilerplate, near],
                         [upload_message, corpus_view], api_visibility="private")
    corpus_view.change(user_errors(lambda cid: describe_corpus(studio, cid)), corpus_view,
                       [summary, histogram, preview], api_visibility="private")
    # Not on page load: app.py describes the corpus after the page load (and the language) anyway.
    after_switch(user_errors(lambda cid: describe_corpus(studio, cid)), corpus_view, [summary, histogram, preview],
                 on_load=False)
    return CorpusTab(upload_event=event, corpus_view=corpus_view, outputs=[summary, histogram, preview])

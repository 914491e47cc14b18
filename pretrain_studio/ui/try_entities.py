"""The named-entity playground of the Try tab: a text with its entities highlighted by type (and their scores),
the same text through several NER runs side by side, and a file tagged into a downloadable file (scored, with the
error table, when it has gold tags)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..studio import Studio
from .errors import ui_error, user_errors
from .i18n import t, widget

EXAMPLE = "Elinor Dashwood travelled from Barton to London with Mrs Jennings."


def tagger_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in studio.tagger_models()]


def highlighted(text: str, spans: list[dict]) -> list[tuple[str, str | None]]:
    """gr.HighlightedText's value: the text cut into plain pieces and entities labelled by type."""
    pieces, at = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        if span["start"] > at:
            pieces.append((text[at:span["start"]], None))
        pieces.append((text[span["start"]:span["end"]], span["type"]))
        at = span["end"]
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def side_by_side(results: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per span any run found; per run the type and score it gave (blank where it found nothing)."""
    spans = sorted({(s["start"], s["end"], s["text"]) for found in results.values() for s in found})
    rows = []
    for start, end, text in spans:
        row = {"entity": text, "start": start, "end": end}
        for run, found in results.items():
            match = next((s for s in found if (s["start"], s["end"]) == (start, end)), None)
            row[run] = f"{match['type']} {match['score']:.2f}" if match else ""
        rows.append(row)
    return pd.DataFrame(rows)


def build_entity_playground(studio: Studio) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The playground; returns its run picker and its "compare with" picker (refreshed when the tab opens)."""
    widget(gr.Markdown, text="try.entities_title")
    choices = tagger_choices(studio)
    with gr.Row():
        tagger = widget(gr.Dropdown, choices=choices, value=choices[0][1] if choices else None,
                        allow_custom_value=True, label="try.tagger", scale=3)
        others = widget(gr.Dropdown, choices=choices, multiselect=True, label="try.compare_taggers", scale=3)
        refresh = widget(gr.Button, text="monitor.refresh", scale=1)
    text = widget(gr.Textbox, label="try.entities_text", lines=2, value=EXAMPLE)
    find = widget(gr.Button, text="try.find_entities", variant="primary")
    marked = widget(gr.HighlightedText, label="try.entities", combine_adjacent=False, show_legend=True)
    found = widget(gr.Dataframe, label="try.entity_table", interactive=False)

    @user_errors
    def on_find(model_id, more, value):
        if not model_id:
            raise ui_error("error.choose_tagger")
        spans = studio.tag_entities(model_id, value)
        table = pd.DataFrame(spans, columns=["text", "type", "score", "start", "end"])
        if more:
            results = {model_id: spans, **{m: studio.tag_entities(m, value) for m in more if m != model_id}}
            table = side_by_side(results)
        return highlighted(value, spans), table

    find.click(on_find, [tagger, others, text], [marked, found], api_visibility="private")
    text.submit(on_find, [tagger, others, text], [marked, found], api_visibility="private")
    refresh.click(lambda: (gr.Dropdown(choices=tagger_choices(studio)), gr.Dropdown(choices=tagger_choices(studio))),
                  None, [tagger, others], api_visibility="private")

    widget(gr.Markdown, text="try.tag_file_intro")
    upload = widget(gr.File, label="try.tag_upload")
    tag = widget(gr.Button, text="try.tag_file")
    download = widget(gr.File, label="try.tag_download")
    summary = gr.Markdown()
    per_type = widget(gr.Dataframe, label="try.per_type", interactive=False)
    errors = widget(gr.Dataframe, label="try.error_table", wrap=True, interactive=False)

    @user_errors
    def on_tag(model_id, path):
        if not model_id:
            raise ui_error("error.choose_tagger")
        result = studio.tag_file(model_id, path)
        metrics = result["metrics"]
        if metrics is None:
            return result["file"], t("try.tagged", rows=f"{result['rows']:,}"), None, None
        table = pd.DataFrame([{"type": k, **{m: round(v, 4) if isinstance(v, float) else v for m, v in s.items()}}
                              for k, s in metrics["per_type"].items()])
        text_summary = t("try.tagged_scored", rows=f"{result['rows']:,}", f1=f"{metrics['entity_f1']:.4f}",
                         precision=f"{metrics['entity_precision']:.4f}", recall=f"{metrics['entity_recall']:.4f}",
                         accuracy=f"{metrics['token_accuracy']:.4f}")
        return result["file"], text_summary, table, error_frame(result["error_table"])

    tag.click(on_tag, [tagger, upload], [download, summary, per_type, errors], api_visibility="private")
    return tagger, others


def error_frame(rows: list[dict]) -> pd.DataFrame:
    """The error table as a frame: kind, gold and predicted type, count, one example."""
    return pd.DataFrame([{"error": r["error"], "gold": r["gold"], "predicted": r["predicted"], "count": r["count"],
                          "example": r["examples"][0] if r["examples"] else ""} for r in rows])

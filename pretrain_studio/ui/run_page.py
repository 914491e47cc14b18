"""A run's page (under Runs → All runs): what it is, where it comes from, what it made, and what to do with it.

Shows the run's summary, lineage both ways (corpus and tokenizer → pretraining run → fine-tuning runs
built on it) as a Markdown tree, its curves, final metrics, files, saved configuration and CLI command,
and the log tail; below them the actions: rename, tags and notes, cancel, resume, export as zip, clone
into the launch form, watch live, and delete (a ticked confirmation first; when other runs are built on
it the engine's refusal is shown with a "Delete anyway" button). The page is a snapshot, read when the
run is opened or changed here (no timer), so its plot keeps the user's zoom.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..studio import Studio, StudioError
from .errors import user_errors
from .monitor_tab import format_seconds
from .plots import loss_figure

MERGEABLE = ("lora", "adalora", "ia3")  # peft methods whose adapter can be merged into a plain model
CANCELLABLE = ("running", "queued")
RESUMABLE = ("stopped", "interrupted", "failed")


@dataclass
class RunPage:
    clone: gr.Button  # app.py loads the run's config into the Pretrain / Fine-tune form
    watch: gr.Button  # app.py opens the run in the live monitor
    changed: list  # events after which the runs table should be read again (rename, tags, delete, ...)


def format_time(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else ""


def run_label(node: dict) -> str:
    kind = "pretraining" if node["kind"] == "pretrain" else f"fine-tune ({node.get('method')})"
    return f"{kind} **{node['name']}** `{node['run_id']}` · {node['status']}"


def lineage_markdown(page: dict) -> str:
    """Where the run comes from and what was built on it, as a nested Markdown list, the run itself in bold."""
    lineage = page["lineage"]
    lines, depth = ["#### Lineage"], 0

    def add(text: str) -> None:
        lines.append("  " * depth + "- " + text)

    if lineage["corpus"]:
        corpus = lineage["corpus"]
        add(f"corpus **{corpus['name']}** `{corpus['corpus_id']}`"
            + (f" · tokenizer {lineage['tokenizer']}" if lineage["tokenizer"] else ""))
        depth += 1
    elif lineage["tokenizer"]:
        add(f"base model and tokenizer {lineage['tokenizer']}")
        depth += 1
    for node in reversed(lineage["ancestors"]):  # nearest first in the data; root first on the page
        add(run_label(node))
        depth += 1
    this = {**page, "method": page["config"].get("method", "mlm")}
    dataset = lineage.get("dataset")
    add("▶ **this run:** " + run_label(this) + (f" · dataset **{dataset['name']}**" if dataset else ""))

    def descend(children: list[dict], level: int) -> None:
        for child in children:
            lines.append("  " * level + "- " + run_label(child))
            descend(child.get("children", []), level + 1)

    descend(lineage["descendants"], depth + 1)
    if not lineage["descendants"]:
        lines.append("  " * (depth + 1) + "- *no runs built on this one yet*")
    return "\n".join(lines)


def count_descendants(children: list[dict]) -> int:
    return sum(1 + count_descendants(c.get("children", [])) for c in children)


def summary_markdown(page: dict) -> str:
    kind = "pretraining (MLM)" if page["kind"] == "pretrain" else f"fine-tuning ({page['config'].get('method')})"
    steps = f"**{page['step']}**" + (f" / {page['max_steps']}" if page["max_steps"] else "") + " steps"
    parts = [f"### {page['name']}",
             (f"`{page['run_id']}` · **{page['status']}** · {kind} on {page['device']} · {steps} · "
              f"took {format_seconds(page['elapsed_seconds'])} · created {format_time(page['created_at'])}")]
    if page["tags"]:
        parts.append("Tags: " + ", ".join(f"`{t}`" for t in page["tags"]))
    if page["notes"]:
        parts.append(f"Notes: {page['notes']}")
    if page.get("error"):
        parts.append(f"**Error:** {page['error'].splitlines()[0]}")
    return "  \n".join(parts)


def files_markdown(page: dict) -> str:
    lines = ["#### Files"] + [f"- `{name}`" for name in page["files"]]
    if not page["files"]:
        lines.append("*no files yet*")
    if page["checkpoints"]:
        lines.append("\nCheckpoints: " + ", ".join(f"`{c}`" for c in page["checkpoints"]))
    return "\n".join(lines)


def finals_frame(page: dict) -> pd.DataFrame:
    rows = [{"metric": name, "final value": round(value, 6)} for name, value in sorted(page["final_metrics"].items())]
    tm = page.get("test_metrics")
    if tm:
        split = page["info"].get("score_split", "test")
        rows += [{"metric": f"{split} accuracy", "final value": round(tm["accuracy"], 6)},
                 {"metric": f"{split} macro-F1", "final value": round(tm["f1"], 6)}]
    return pd.DataFrame(rows, columns=["metric", "final value"])


def metric_series(studio: Studio, run_id: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for row in studio.run_metrics(run_id, 0):
        series.setdefault(row["name"], []).append((row["step"], row["value"]))
    return series


def build_run_page(studio: Studio, run: gr.Dropdown, reload: gr.Button) -> RunPage:
    """The page of the run chosen in `run` (a dropdown the runs table also sets); `reload` reads it again."""
    header = gr.Markdown("*Choose a run in the table (click its row) or in the list above.*")
    with gr.Row():
        lineage = gr.Markdown()
        with gr.Column():
            finals = gr.Dataframe(headers=["metric", "final value"], label="Final metrics", interactive=False,
                                  max_height=260)
            files = gr.Markdown()
    plot = gr.Plot(label="Curves")
    with gr.Accordion("Configuration and command", open=False):
        config = gr.Code(language="json", label="Saved configuration (config.json)", lines=12, max_lines=30)
        command = gr.Code(language="shell", label="Reproduce headless", lines=1)
    log = gr.Textbox(label="Log tail", lines=8, max_lines=8, interactive=False)

    with gr.Accordion("Manage this run", open=True):
        with gr.Row():
            new_name = gr.Textbox(label="Name", scale=3)
            rename = gr.Button("Rename", scale=1)
        with gr.Row():
            tags = gr.Textbox(label="Tags (comma-separated)", scale=2)
            notes = gr.Textbox(label="Notes", scale=3)
            save_tags = gr.Button("Save tags and notes", scale=1)
        with gr.Row():
            clone = gr.Button("Clone into the launch form")
            watch = gr.Button("Watch live")
            cancel = gr.Button("Cancel run", variant="stop")
        with gr.Row():
            resume_steps = gr.Number(label="Resume: new max steps (0 = unchanged)", precision=0, value=0, minimum=0)
            resume_epochs = gr.Number(label="Resume: new epochs (0 = unchanged)", value=0, minimum=0)
            resume = gr.Button("Resume")
        with gr.Row():
            merged = gr.Checkbox(label="Export a merged model (LoRA-style runs)", value=False, visible=False)
            export = gr.Button("Export as zip")
            download = gr.File(label="Exported zip", interactive=False, height=90)
        dependents = gr.Markdown()
        with gr.Row():
            confirm = gr.Checkbox(label="Yes, delete this run and its files", value=False)
            delete = gr.Button("Delete run", variant="stop")
            force = gr.Button("Delete anyway", variant="stop", visible=False)
    message = gr.Markdown()

    page_outputs = [header, lineage, finals, files, plot, config, command, log, new_name, tags, notes, merged,
                    dependents, confirm, force, cancel, resume, message]

    @user_errors
    def show(run_id, note: str = ""):
        if not run_id:
            return ("*Choose a run in the table (click its row) or in the list above.*", "",
                    pd.DataFrame(columns=["metric", "final value"]), "", None, "", "",
                    "", "", "", "", gr.Checkbox(visible=False), "", False, gr.Button(visible=False),
                    gr.Button(interactive=False), gr.Button(interactive=False), note or gr.skip())
        page = studio.get_run(run_id)
        built_on = count_descendants(page["lineage"]["descendants"])
        warning = (f"⚠ **{built_on} run(s) are built on this one** (see Lineage). Deleting it is refused unless "
                   "you delete anyway; those runs keep their own files." if built_on else "")
        return (summary_markdown(page), lineage_markdown(page), finals_frame(page), files_markdown(page),
                loss_figure(metric_series(studio, run_id)), json.dumps(page["config"], indent=2),
                page["cli_command"], page["log_tail"], page["name"], ", ".join(page["tags"]), page["notes"],
                gr.Checkbox(visible=page["config"].get("method") in MERGEABLE, value=False), warning, False,
                gr.Button(visible=False), gr.Button(interactive=page["status"] in CANCELLABLE),
                gr.Button(interactive=page["status"] in RESUMABLE), note)

    # Many outputs: an error would paint an "Error" badge over each of them, so these events show no
    # progress (they take well under a second) and errors come as the toast alone.
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    run.change(show, run, page_outputs, **quiet)
    reload.click(show, run, page_outputs, **quiet)

    def act(action):
        """An action on the chosen run, then the page read again with the action's message."""
        @user_errors
        def handler(run_id, *args):
            if not run_id:
                raise gr.Error("choose a run first")
            return show(run_id, action(run_id, *args))
        return handler

    def on_rename(run_id, name):
        return f"Renamed to **{studio.rename_run(run_id, name)['name']}**."

    def on_tags(run_id, tag_text, note_text):
        result = studio.tag_run(run_id, tag_text or "", note_text or "")
        return "Saved tags " + (", ".join(f"`{t}`" for t in result["tags"]) or "(none)") + " and notes."

    def on_cancel(run_id):
        status = studio.cancel_run(run_id)["status"]
        if status == "running":  # the trainer sees the request at its next step
            return "Cancel requested: the run ends at its next step and keeps no checkpoint."
        return f"Run is now **{status}**."

    def on_resume(run_id, steps, epochs):
        overrides = {key: value for key, value in (("max_steps", steps), ("num_epochs", epochs)) if value}
        result = studio.resume_run(run_id, overrides)
        start = f"from `{result['from_checkpoint']}`" if result["from_checkpoint"] else "from the start (no checkpoint)"
        return f"Queued again {start}: **{result['status']}**."

    changed = [
        rename.click(act(on_rename), [run, new_name], page_outputs, **quiet),
        new_name.submit(act(on_rename), [run, new_name], page_outputs, **quiet),
        save_tags.click(act(on_tags), [run, tags, notes], page_outputs, **quiet),
        cancel.click(act(on_cancel), run, page_outputs, **quiet),
        resume.click(act(on_resume), [run, resume_steps, resume_epochs], page_outputs, **quiet),
    ]

    @user_errors
    def on_export(run_id, merge):
        if not run_id:
            raise gr.Error("choose a run first")
        return studio.export_run(run_id, bool(merge))

    export.click(on_export, [run, merged], download, api_visibility="private")

    def on_delete(run_id, confirmed, force_it=False):
        if not run_id:
            raise gr.Error("choose a run first")
        if not confirmed:
            raise gr.Error("tick \"Yes, delete this run and its files\" first", print_exception=False)
        try:
            result = studio.delete_run(run_id, force=force_it)
        except StudioError as exc:
            refused_for_dependents = (studio.run_status(run_id)["status"] not in CANCELLABLE
                                      and studio.lineage(run_id)["descendants"])
            if not force_it and refused_for_dependents:
                # The engine refuses because other runs are built on it: say so, offer to delete anyway.
                return gr.skip(), gr.skip(), f"⚠ {exc}", gr.Button(visible=True), gr.skip()
            raise gr.Error(str(exc), print_exception=False) from None
        note = f"Deleted `{run_id}`" + (f"; {len(result['dependents'])} run(s) built on it keep their files."
                                         if result["dependents"] else ".")
        return None, note, "", gr.Button(visible=False), False

    delete_outputs = [run, message, dependents, force, confirm]
    changed.append(delete.click(user_errors(on_delete), [run, confirm], delete_outputs, **quiet))
    changed.append(force.click(user_errors(lambda r, c: on_delete(r, c, True)), [run, confirm], delete_outputs,
                               **quiet))
    return RunPage(clone=clone, watch=watch, changed=changed)

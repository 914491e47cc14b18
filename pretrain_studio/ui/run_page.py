"""A run's page (under Runs → All runs): what it is, where it comes from, what it made, and what to do with it.

Shows the run's summary, lineage both ways (corpus and tokenizer → pretraining run → fine-tuning runs
built on it) as a Markdown tree, what its numbers mean (the fine-tuning verdict; the no-context line and the
downstream checks of a pretraining run, ui/quality.py), its curves, final metrics, files, saved configuration and CLI command,
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

from .. import run_owner
from ..errors import StudioError
from ..run_states import RunStatus
from ..studio import Studio
from .errors import ui_error, user_errors
from .i18n import after_switch, status_word, t, translate_columns, translate_error, widget
from .monitor_tab import format_seconds, search_lines
from .plots import downstream_figure, loss_figure
from .quality import downstream_lines, has_downstream, no_context_sentence, start_line_label, verdict_line

MERGEABLE = ("lora", "adalora", "ia3")  # peft methods whose adapter can be merged into a plain model


@dataclass
class RunPage:
    clone: gr.Button  # app.py loads the run's config into the Pretrain / Fine-tune form
    watch: gr.Button  # app.py opens the run in the live monitor
    changed: list  # events after which the runs table should be read again (rename, tags, delete, ...)


def format_time(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else ""


def run_label(node: dict) -> str:
    kind = t("lineage.pretraining") if node["kind"] == "pretrain" else t("lineage.finetune",
                                                                          method=node.get("method"))
    return f"{kind} **{node['name']}** `{node['run_id']}` · {status_word(node['status'])}"


def lineage_markdown(page: dict) -> str:
    """Where the run comes from and what was built on it, as a nested Markdown list, the run itself in bold."""
    lineage = page["lineage"]
    lines, depth = [t("lineage.title")], 0

    def add(text: str) -> None:
        lines.append("  " * depth + "- " + text)

    if lineage["corpus"]:
        corpus = lineage["corpus"]
        add(t("lineage.corpus", name=corpus["name"], corpus_id=corpus["corpus_id"])
            + (t("lineage.tokenizer", tokenizer=lineage["tokenizer"]) if lineage["tokenizer"] else ""))
        depth += 1
    elif lineage["tokenizer"]:
        add(t("lineage.base_and_tokenizer", tokenizer=lineage["tokenizer"]))
        depth += 1
    for node in reversed(lineage["ancestors"]):  # nearest first in the data; root first on the page
        add(run_label(node))
        depth += 1
    this = {**page, "method": page["config"].get("method", "mlm")}
    dataset = lineage.get("dataset")
    add(t("lineage.this_run") + run_label(this) + (t("lineage.dataset", name=dataset["name"]) if dataset else ""))

    def descend(children: list[dict], level: int) -> None:
        for child in children:
            lines.append("  " * level + "- " + run_label(child))
            descend(child.get("children", []), level + 1)

    descend(lineage["descendants"], depth + 1)
    if not lineage["descendants"]:
        lines.append("  " * (depth + 1) + "- " + t("lineage.no_children"))
    return "\n".join(lines)


def count_descendants(children: list[dict]) -> int:
    return sum(1 + count_descendants(c.get("children", [])) for c in children)


def summary_markdown(page: dict) -> str:
    kind = (t("summary.pretraining") if page["kind"] == "pretrain"
            else t("summary.finetuning", method=page["config"].get("method")))
    steps = t("summary.steps", step=page["step"], of=f" / {page['max_steps']}" if page["max_steps"] else "")
    parts = [f"### {page['name']}",
             t("summary.line", run_id=page["run_id"], status=status_word(page["status"]), kind=kind,
               device=page["device"], steps=steps, took=format_seconds(page["elapsed_seconds"]),
               created=format_time(page["created_at"]))]
    if page["tags"]:
        parts.append(t("summary.tags", tags=", ".join(f"`{tag}`" for tag in page["tags"])))
    if page["notes"]:
        parts.append(t("summary.notes", notes=page["notes"]))
    owner = page.get("owner")
    if owner and not run_owner.is_me(owner):  # e.g. a CLI command in a terminal, on this workspace
        parts.append(t("summary.owner", pid=owner.get("pid"), host=owner.get("host")))
    parts += search_lines(page)
    if page.get("error"):
        parts.append(t("monitor.error", error=translate_error(page["error"].splitlines()[0])))
    return "  \n".join(parts)


def files_markdown(page: dict) -> str:
    lines = [t("files.title")] + [f"- `{name}`" for name in page["files"]]
    if not page["files"]:
        lines.append(t("files.none"))
    if page["checkpoints"]:
        lines.append("\n" + t("files.checkpoints", checkpoints=", ".join(f"`{c}`" for c in page["checkpoints"])))
    return "\n".join(lines)


def finals_frame(page: dict) -> pd.DataFrame:
    rows = [{"metric": name, "final value": round(value, 6)} for name, value in sorted(page["final_metrics"].items())]
    tm = page.get("test_metrics")
    if tm:
        split = page["info"].get("score_split", "test")
        rows += [{"metric": t("finals.accuracy", split=split), "final value": round(tm["accuracy"], 6)},
                 {"metric": t("finals.f1", split=split), "final value": round(tm["f1"], 6)}]
    return translate_columns(pd.DataFrame(rows, columns=["metric", "final value"]))


def quality_markdown(page: dict, dataset_names: dict[str, str] | None = None) -> str:
    """What the run's numbers mean: a fine-tuning run's verdict against its baselines; a pretraining run's
    held-out loss against the no-context line and its downstream checks against step 0 (ui/quality.py)."""
    info = page.get("info") or {}
    if page["kind"] == "finetune":
        return verdict_line(info)
    lines = [no_context_sentence(page.get("final_metrics", {}).get("eval_loss"), info),
             *downstream_lines(page, dataset_names)]
    return "  \n".join(line for line in lines if line)


def metric_series(studio: Studio, run_id: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for row in studio.run_metrics(run_id, 0):
        series.setdefault(row["name"], []).append((row["step"], row["value"]))
    return series


def build_run_page(studio: Studio, run: gr.Dropdown, reload: gr.Button) -> RunPage:
    """The page of the run chosen in `run` (a dropdown the runs table also sets); `reload` reads it again."""
    header = gr.Markdown(t("page.choose"))
    quality = gr.Markdown()
    with gr.Row():
        lineage = gr.Markdown()
        with gr.Column():
            finals = widget(gr.Dataframe, headers=["metric", "final value"], label="page.finals", interactive=False,
                            max_height=260)
            files = gr.Markdown()
    with gr.Row():
        plot = widget(gr.Plot, label="page.curves")
        checks = widget(gr.Plot, label="page.downstream", visible=False)  # runs with downstream checks only
    with widget(gr.Accordion, label="page.config_box", open=False):
        config = widget(gr.Code, language="json", label="page.config", lines=12, max_lines=30)
        command = widget(gr.Code, language="shell", label="page.command", lines=1)
    log = widget(gr.Textbox, label="monitor.log", lines=8, max_lines=8, interactive=False)

    with widget(gr.Accordion, label="page.manage_box", open=True):
        with gr.Row():
            new_name = widget(gr.Textbox, label="page.name", scale=3)
            rename = widget(gr.Button, text="page.rename", scale=1)
        with gr.Row():
            tags = widget(gr.Textbox, label="page.tags", scale=2)
            notes = widget(gr.Textbox, label="page.notes", scale=3)
            save_tags = widget(gr.Button, text="page.save_tags", scale=1)
        with gr.Row():
            clone = widget(gr.Button, text="page.clone")
            watch = widget(gr.Button, text="page.watch")
            cancel = widget(gr.Button, text="page.cancel", variant="stop")
        with gr.Row():
            resume_steps = widget(gr.Number, label="page.resume_steps", precision=0, value=0, minimum=0)
            resume_epochs = widget(gr.Number, label="page.resume_epochs", value=0, minimum=0)
            resume = widget(gr.Button, text="page.resume")
        with gr.Row():
            merged = widget(gr.Checkbox, label="page.merged", value=False, visible=False)
            export = widget(gr.Button, text="page.export")
            download = widget(gr.File, label="page.download", interactive=False, height=90)
        dependents = gr.Markdown()
        with gr.Row():
            confirm = widget(gr.Checkbox, label="page.confirm", value=False)
            delete = widget(gr.Button, text="page.delete", variant="stop")
            force = widget(gr.Button, text="page.force", variant="stop", visible=False)
    message = gr.Markdown()

    page_outputs = [header, lineage, finals, files, plot, config, command, log, new_name, tags, notes, merged,
                    dependents, confirm, force, cancel, resume, message, quality, checks]

    @user_errors
    def show(run_id, note: str = "") -> dict:
        """The page of `run_id` (or the empty page), every output by name; `note`: the last action's message."""
        if not run_id:
            return {header: t("page.choose"), lineage: "", finals: translate_columns(pd.DataFrame(
                        columns=["metric", "final value"])), files: "", plot: None, config: "", command: "", log: "",
                    new_name: "", tags: "", notes: "", merged: gr.Checkbox(visible=False), dependents: "",
                    confirm: False, force: gr.Button(visible=False), cancel: gr.Button(interactive=False),
                    resume: gr.Button(interactive=False), message: note or gr.skip(), quality: "",
                    checks: gr.Plot(visible=False)}
        page = studio.get_run(run_id)
        series = metric_series(studio, run_id)
        names = {d["dataset_id"]: d["name"] for d in studio.list_datasets()} if page["kind"] == "pretrain" else {}
        built_on = count_descendants(page["lineage"]["descendants"])
        status = RunStatus(page["status"])
        return {
            header: summary_markdown(page), lineage: lineage_markdown(page), finals: finals_frame(page),
            files: files_markdown(page), plot: loss_figure(series, no_context=page["info"].get("no_context_loss")),
            config: json.dumps(page["config"], indent=2), command: page["cli_command"], log: page["log_tail"],
            new_name: page["name"], tags: ", ".join(page["tags"]), notes: page["notes"],
            merged: gr.Checkbox(visible=page["config"].get("method") in MERGEABLE, value=False),
            dependents: t("page.dependents_warning", count=built_on) if built_on else "", confirm: False,
            force: gr.Button(visible=False), cancel: gr.Button(interactive=status.can_cancel),
            resume: gr.Button(interactive=status.can_resume), message: note, quality: quality_markdown(page, names),
            checks: (gr.Plot(value=downstream_figure(series, start_line_label(page["config"]), names), visible=True)
                     if has_downstream(series) else gr.Plot(visible=False)),
        }

    # Many outputs: an error would paint an "Error" badge over each of them, so these events show no
    # progress (they take well under a second) and errors come as the toast alone.
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    run.change(show, run, page_outputs, **quiet)
    reload.click(show, run, page_outputs, **quiet)
    after_switch(show, run, page_outputs)

    def act(action):
        """An action on the chosen run, then the page read again with the action's message."""
        @user_errors
        def handler(run_id, *args):
            if not run_id:
                raise ui_error("error.choose_run")
            return show(run_id, action(run_id, *args))
        return handler

    def on_rename(run_id, name):
        return t("page.renamed", name=studio.rename_run(run_id, name)["name"])

    def on_tags(run_id, tag_text, note_text):
        result = studio.tag_run(run_id, tag_text or "", note_text or "")
        return t("page.tags_saved", tags=", ".join(f"`{tag}`" for tag in result["tags"]) or t("page.no_tags"))

    def on_cancel(run_id):
        status = studio.cancel_run(run_id)["status"]
        if status == "running":  # the trainer sees the request at its next step
            return t("page.cancel_requested")
        return t("page.run_is_now", status=status_word(status))

    def on_resume(run_id, steps, epochs):
        overrides = {key: value for key, value in (("max_steps", steps), ("num_epochs", epochs)) if value}
        result = studio.resume_run(run_id, overrides)
        start = (t("page.from_checkpoint", checkpoint=result["from_checkpoint"]) if result["from_checkpoint"]
                 else t("page.from_start"))
        return t("page.queued_again", start=start, status=status_word(result["status"]))

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
            raise ui_error("error.choose_run")
        return studio.export_run(run_id, bool(merge))

    export.click(on_export, [run, merged], download, api_visibility="private")

    def on_delete(run_id, confirmed, force_it=False):
        if not run_id:
            raise ui_error("error.choose_run")
        if not confirmed:
            raise ui_error("error.tick_confirm")
        try:
            result = studio.delete_run(run_id, force=force_it)
        except StudioError as exc:
            refused_for_dependents = (not RunStatus(studio.run_status(run_id)["status"]).can_cancel
                                      and studio.lineage(run_id)["descendants"])
            if not force_it and refused_for_dependents:
                # The engine refuses because other runs are built on it: say so, offer to delete anyway.
                return {dependents: f"⚠ {translate_error(exc)}", force: gr.Button(visible=True)}
            raise gr.Error(translate_error(exc), print_exception=False) from None
        note = (t("page.deleted_keep", run_id=run_id, count=len(result["dependents"])) if result["dependents"]
                else t("page.deleted", run_id=run_id))
        return {run: None, message: note, dependents: "", force: gr.Button(visible=False), confirm: False}

    delete_outputs = [run, message, dependents, force, confirm]
    changed.append(delete.click(user_errors(on_delete), [run, confirm], delete_outputs, **quiet))
    changed.append(force.click(user_errors(lambda r, c: on_delete(r, c, True)), [run, confirm], delete_outputs,
                               **quiet))
    return RunPage(clone=clone, watch=watch, changed=changed)

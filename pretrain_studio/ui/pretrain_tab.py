"""Pretrain tab: the MLM settings form, the pre-launch tokenizer report, and Launch."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..config import MODEL_PRESETS, PRECISIONS, PretrainConfig, field_docs
from ..studio import Studio
from .corpus_tab import corpus_choices
from .errors import user_errors


@dataclass
class PretrainTab:
    corpus: gr.Dropdown
    launch_event: object
    launched_run: gr.State  # run id of the last launch, for the monitor
    inputs: dict = field(default_factory=dict)


def device_choices() -> list[str]:
    import torch

    return ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def hardware_inputs(inputs: dict, defaults, docs: dict) -> None:
    """Device, precision and trackers: the same three fields on every launch form."""
    with gr.Row():
        inputs["device"] = gr.Dropdown(choices=device_choices(), value=defaults.device, label="Device",
                                       info=docs["device"])
        inputs["precision"] = gr.Dropdown(choices=list(PRECISIONS), value=defaults.precision, label="Precision",
                                          info=docs["precision"])
        inputs["report_to"] = gr.Textbox(value=defaults.report_to, label="Also report to", info=docs["report_to"],
                                         placeholder="tensorboard, mlflow or trackio")


def scale_out_inputs(inputs: dict, defaults, docs: dict) -> gr.Markdown:
    """Devices, machines and machine 0's address (torchrun), then the effective batch size, kept up to date as
    the batch size, gradient accumulation, devices or machines change. The app is always machine 0."""
    with gr.Row():
        inputs["devices"] = gr.Number(value=defaults.devices, label="Devices (processes)", precision=0,
                                      info=docs["devices"])
        inputs["nodes"] = gr.Number(value=defaults.nodes, label="Machines", precision=0, info=docs["nodes"])
        inputs["rdzv_endpoint"] = gr.Textbox(value=defaults.rdzv_endpoint, label="Machine 0's address",
                                             info=docs["rdzv_endpoint"], placeholder="host:port, when machines > 1")
    effective = gr.Markdown(effective_batch_text(defaults.batch_size, getattr(defaults, "gradient_accumulation_steps",
                                                                               None), defaults.devices, defaults.nodes))
    names = [n for n in ("batch_size", "gradient_accumulation_steps", "devices", "nodes") if n in inputs]
    sources = [inputs[n] for n in names]

    def update(*values):
        given = dict(zip(names, values))
        return effective_batch_text(given["batch_size"], given.get("gradient_accumulation_steps"), given["devices"],
                                    given["nodes"])

    for source in sources:
        source.change(update, sources, effective, api_visibility="private", queue=False)
    return effective


def effective_batch_text(batch, accumulation, devices, nodes) -> str:
    """'Effective batch: **64** examples per optimizer step = 16 per device x 2 processes x 2 accumulation steps'."""
    try:
        batch, devices, nodes = int(batch or 0), int(devices or 1), int(nodes or 1)
        accumulation = int(accumulation or 1)
    except (TypeError, ValueError):
        return "Effective batch: (enter whole numbers)"
    processes = devices * nodes
    parts = [f"{batch} per device", f"{processes} process{'es' if processes != 1 else ''}"
             + (f" ({devices} x {nodes} machines)" if nodes > 1 else "")]
    if accumulation > 1:
        parts.append(f"{accumulation} accumulation steps")
    return f"Effective batch: **{batch * processes * accumulation:,}** per optimizer step = {' x '.join(parts)}"


def base_model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [("(none: train from scratch)", "")] + [(f"{r['name']} ({r['run_id']})", r["run_id"])
                                                   for r in studio.mlm_models()]


def build_pretrain_tab(studio: Studio) -> PretrainTab:
    defaults = PretrainConfig()
    docs = field_docs()
    inputs: dict[str, gr.components.Component] = {}

    def number(name: str, label: str, precision: int | None = 0, **kw):
        inputs[name] = gr.Number(value=getattr(defaults, name), label=label, info=docs[name], precision=precision, **kw)

    corpora = corpus_choices(studio)
    with gr.Row():
        inputs["corpus_id"] = gr.Dropdown(choices=corpora, value=corpora[0][1] if corpora else None,
                                          label="Corpus", info=docs["corpus_id"])
        inputs["name"] = gr.Textbox(label="Run name", info=docs["name"])
    with gr.Row():
        inputs["model_size"] = gr.Dropdown(
            choices=[(f"{k} ({l} layers x {h})", k) for k, (l, h) in MODEL_PRESETS.items()],
            value=defaults.model_size, label="Model size (from scratch)", info=docs["model_size"])
        inputs["base_model"] = gr.Dropdown(choices=base_model_choices(studio), value="", allow_custom_value=True,
                                           label="Continue pretraining from", info=docs["base_model"])
    with gr.Row():
        number("vocab_size", "Vocabulary size")
        inputs["lowercase"] = gr.Checkbox(value=defaults.lowercase, label="Lowercase", info=docs["lowercase"])
        number("max_seq_length", "Max sequence length")
    with gr.Row():
        number("max_steps", "Max steps")
        number("num_epochs", "Epochs", precision=None)
        number("batch_size", "Batch size")
        number("gradient_accumulation_steps", "Gradient accumulation")
    scale_out_inputs(inputs, defaults, docs)
    with gr.Row():
        number("learning_rate", "Learning rate", precision=None)
        number("warmup_steps", "Warm-up steps")
        number("weight_decay", "Weight decay", precision=None)
        number("dropout", "Dropout", precision=None)
    with gr.Row():
        inputs["mask_probability"] = gr.Slider(0.05, 0.5, value=defaults.mask_probability, step=0.01,
                                               label="Mask probability", info=docs["mask_probability"])
        inputs["whole_word_mask"] = gr.Checkbox(value=defaults.whole_word_mask, label="Whole-word masking",
                                                info=docs["whole_word_mask"])
        inputs["eval_fraction"] = gr.Slider(0.01, 0.3, value=defaults.eval_fraction, step=0.01,
                                            label="Held-out share", info=docs["eval_fraction"])
    with gr.Accordion("Schedule, seed and hardware", open=False):
        with gr.Row():
            number("eval_steps", "Evaluate every")
            number("logging_steps", "Log every")
            number("save_steps", "Checkpoint every")
            number("seed", "Seed")
        hardware_inputs(inputs, defaults, docs)
        inputs["torch_compile"] = gr.Checkbox(value=defaults.torch_compile, label="torch.compile",
                                              info=docs["torch_compile"])
    names = list(inputs)
    components = [inputs[n] for n in names]
    with gr.Row():
        check = gr.Button("Check tokenizer")
        launch = gr.Button("Launch pretraining", variant="primary")
    report = gr.Markdown()
    launched_run = gr.State("")

    def values_of(*args) -> dict:
        return {name: value for name, value in zip(names, args) if value is not None}

    @user_errors
    def on_check(*args):
        r = studio.tokenizer_report(values_of(*args))
        return (f"**Tokenizer check** on {r['documents_sampled']:,} documents: unknown-token rate "
                f"**{r['unk_rate']:.2%}**, documents longer than the max sequence length "
                f"**{r['long_document_share']:.1%}** (mean {r['mean_tokens_per_document']:.0f} tokens per document).")

    @user_errors
    def on_launch(*args):
        result = studio.start_pretraining(values_of(*args))
        return f"Launched run `{result['run_id']}` ({result['status']}).", result["run_id"]

    check.click(on_check, components, report, api_visibility="private")
    event = launch.click(on_launch, components, [report, launched_run], api_visibility="private")
    return PretrainTab(corpus=inputs["corpus_id"], launch_event=event, launched_run=launched_run, inputs=inputs)

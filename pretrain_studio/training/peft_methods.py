"""Fine-tuning methods: which parameters of a sequence classifier train, for each method.

    full        every parameter
    top_layers  the top N encoder layers, the pooler and the head (embeddings and lower layers frozen)
    lora        peft LoRA on the named modules
    adalora     peft AdaLoRA (LoRA whose ranks are pruned to a budget during training)
    ia3         peft IA3 (learned rescaling vectors)
    adapter     bottleneck adapters (Houlsby et al.), our own module: peft has none

`apply_method(model, cfg, total_steps)` returns the model to train. For the
peft methods and adapters, the pooler and the head are trained and saved with
the adapter: a model pretrained with MLM has no trained pooler, so its
classifier gets a fresh one, and reloading without it would change the answers.

ModernBERT works with every method. Its layers are `model.layers` (top_layers also trains its final norm,
which sits above them); its classifier head is `head` (dense + GELU + norm) and `classifier`, trained and saved
like BERT's pooler and classifier; its attention has one fused projection `Wqkv` and an output `Wo`, its GeGLU
feed-forward `mlp.Wi` and `mlp.Wo`. BERT's default targets (query,value) mean `Wqkv` there, and IA3's
feed-forward module is `mlp.Wo` (`target_modules_for`).
"""

from __future__ import annotations

import torch
from peft import AdaLoraConfig, IA3Config, LoraConfig, TaskType, get_peft_model

from ..bottleneck import add_bottleneck_adapters
from ..config import DEFAULT_TARGET_MODULES, TOKEN_TASK, ConfigError, FinetuneConfig

# Trained alongside every adapter method and saved with it (see the module docstring).
HEAD_MODULES = ["classifier", "pooler"]
# Per architecture (config.model_type): the default targets (lora_target_modules left at BERT's query,value), IA3's
# feed-forward modules, the classifier's own modules beyond HEAD_MODULES, and what sits above the top layer.
ARCHITECTURE_MODULES = {
    "modernbert": {"targets": ["Wqkv"], "feedforward": ["mlp.Wo"], "head": ["head"], "above_layers": ["final_norm"]},
}


def architecture_of(model: torch.nn.Module) -> str:
    return getattr(getattr(model, "config", None), "model_type", "") or ""


def target_modules_for(model: torch.nn.Module, cfg: FinetuneConfig) -> list[str]:
    """The modules lora / adalora / ia3 adapt: the setting, or, left at its default on an architecture with other
    names, that architecture's attention projections."""
    modules = ARCHITECTURE_MODULES.get(architecture_of(model))
    if modules and cfg.lora_target_modules.strip() == DEFAULT_TARGET_MODULES:
        return list(modules["targets"])
    return cfg.target_modules()


def head_module_names(model: torch.nn.Module) -> list[str]:
    """The names of the classifier's own modules (trained by every method): the pooler and classifier, and the
    architecture's head."""
    return HEAD_MODULES + ARCHITECTURE_MODULES.get(architecture_of(model), {}).get("head", [])


def count_parameters(model: torch.nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total,
            "trainable_share": trainable / total if total else 0.0}


def encoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer layers (BERT: model.bert.encoder.layer, ModernBERT: model.model.layers)."""
    modernbert = architecture_of(model) == "modernbert"
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and (name.endswith("encoder.layer")
                                                         or (modernbert and name.endswith("model.layers"))):
            return module
    raise ConfigError("method", f"the model ({architecture_of(model) or type(model).__name__}) has no BERT-style "
                                "encoder.layer stack, so top_layers cannot be used")


def check_target_modules(model: torch.nn.Module, targets: list[str], method: str = "lora") -> None:
    """Every target must name modules of this model (peft matches by suffix)."""
    names = [name for name, _ in model.named_modules()]
    for target in targets:
        if not any(name == target or name.endswith("." + target) for name in names):
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
            raise ConfigError("lora_target_modules",
                              f"the model has no module named {target!r}; its linear layers are called "
                              f"{', '.join(linear)} ({method} on a {architecture_of(model) or type(model).__name__} "
                              "model)")


def head_modules(model: torch.nn.Module) -> list[str]:
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    return [m for m in head_module_names(model) if m in present]


def apply_method(model: torch.nn.Module, cfg: FinetuneConfig, total_steps: int) -> torch.nn.Module:
    """Freeze / wrap `model` for cfg.method and return the model to hand to the Trainer."""
    method = cfg.method
    if method == "full":
        for p in model.parameters():
            p.requires_grad = True
        return model

    if method == "top_layers":
        layers = encoder_layers(model)
        if cfg.top_layers > len(layers):
            raise ConfigError("top_layers", f"the model has only {len(layers)} encoder layers")
        for p in model.parameters():
            p.requires_grad = False
        trained = [*layers[len(layers) - cfg.top_layers:]]
        above = head_module_names(model) + ARCHITECTURE_MODULES.get(architecture_of(model), {}).get("above_layers", [])
        trained += [module for name, module in model.named_modules() if name.rsplit(".", 1)[-1] in above]
        for module in trained:
            for p in module.parameters():
                p.requires_grad = True
        return model

    if method == "adapter":
        add_bottleneck_adapters(model, cfg.adapter_size)
        return model

    targets = target_modules_for(model, cfg)
    check_target_modules(model, targets, method)
    saved = head_modules(model)
    task_type = TaskType.TOKEN_CLS if cfg.task == TOKEN_TASK else TaskType.SEQ_CLS
    if method == "lora":
        peft_config = LoraConfig(task_type=task_type, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                 lora_dropout=cfg.lora_dropout, target_modules=targets, modules_to_save=saved)
    elif method == "adalora":
        # AdaLoRA's schedule: warm up (tinit), prune ranks towards the budget, then hold them (tfinal).
        tinit = cfg.adalora_tinit or max(1, total_steps // 10)
        tfinal = cfg.adalora_tfinal or max(1, total_steps // 5)
        if tinit + tfinal >= total_steps:
            raise ConfigError("adalora_tinit", f"adalora_tinit + adalora_tfinal ({tinit} + {tfinal}) must leave "
                                               f"steps for pruning within the {total_steps} training steps")
        peft_config = AdaLoraConfig(task_type=task_type, init_r=cfg.adalora_init_r,
                                    target_r=cfg.adalora_target_r, lora_alpha=cfg.lora_alpha,
                                    lora_dropout=cfg.lora_dropout, target_modules=targets, modules_to_save=saved,
                                    tinit=tinit, tfinal=tfinal, deltaT=max(1, total_steps // 20),
                                    total_step=total_steps)
    elif method == "ia3":
        # IA3 rescales attention projections and the feed-forward output (its paper's placement).
        feedforward = ARCHITECTURE_MODULES.get(architecture_of(model), {}).get("feedforward")
        if feedforward is None:
            feedforward = ["output.dense"] if any(n.endswith("output.dense") for n, _ in model.named_modules()) else []
        peft_config = IA3Config(task_type=task_type, target_modules=targets + feedforward,
                                feedforward_modules=feedforward, modules_to_save=saved)
    else:
        raise ConfigError("method", f"unknown method {method!r}")
    return get_peft_model(model, peft_config)

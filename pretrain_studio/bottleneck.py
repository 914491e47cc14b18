"""Bottleneck (Houlsby) adapters for BERT-style (and ModernBERT) sequence classifiers: insert, save, reload.

peft has no bottleneck adapter and cannot register a new method type, and the
`adapters` library pins an older transformers, so this small module gives the
one missing method the same shape as the peft ones: wrap the model in place,
train it with the Trainer, save only what was trained, rebuild it from the
base model plus that small file.

Houlsby et al. 2019 put an adapter after both sublayers of every transformer
layer, before the sublayer's own residual-add + LayerNorm:

    adapter(x) = x + up(gelu(down(x)))        down: hidden -> size, up: size -> hidden

In BERT those sublayer outputs are `encoder.layer.N.attention.output.dense`
and `encoder.layer.N.output.dense`; each becomes an `AdaptedLinear` that runs
the original Linear and then its adapter. Trained: the adapters, every
LayerNorm, the pooler and the classification head.

ModernBERT's layers are pre-norm (x + attn(norm(x)), then x + mlp(norm(x))): the sublayer outputs, before
the residual add, are `layers.N.attn.Wo` and `layers.N.mlp.Wo` (bias-free), adapted the same way; its
classification head is `head` (dense + GELU + norm) and `classifier`, trained with the adapters.

    add_bottleneck_adapters(model, adapter_size=64)   # then train as usual
    save_bottleneck(model, folder, base_model=path, adapter_size=64)
    model = load_bottleneck(folder)

The pooler matters: a model pretrained with MLM has no trained pooler, so the
classifier built on it starts with a random one; it is trained here, so it is
saved, and loading refuses a file that lacks it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

ADAPTER_CONFIG_NAME = "bottleneck_config.json"
ADAPTER_WEIGHTS_NAME = "bottleneck_model.safetensors"

# The two sublayer output projections of a BERT-style layer (BertSelfOutput.dense, BertOutput.dense), and of a
# ModernBERT layer (its attention's and its GeGLU feed-forward's Wo).
_TARGET_PATTERNS = (re.compile(r"(^|\.)attention\.output\.dense$"), re.compile(r"(^|\.)layer\.\d+\.output\.dense$"),
                    re.compile(r"(^|\.)layers\.\d+\.(attn|mlp)\.Wo$"))
# Modules trained (and saved) with the adapters, matched as a component of the qualified name.
_HEAD_MODULES = ("classifier", "pooler")
_ARCHITECTURE_HEAD_MODULES = {"modernbert": ("head",)}  # the architecture's own classifier head (config.model_type)
# Near-zero init of the up-projection: the adapted model starts (almost) as the base model, yet the
# down-projection gets a gradient from the first step (an exactly-zero `up` would block it for one step).
_UP_INIT_STD = 1e-3


class BottleneckAdapter(nn.Module):
    """x + up(gelu(down(x))): a residual bottleneck, near the identity at initialisation."""

    def __init__(self, hidden_size: int, adapter_size: int, init_std: float = 0.02):
        super().__init__()
        self.down = nn.Linear(hidden_size, adapter_size)
        self.act = nn.GELU()
        self.up = nn.Linear(adapter_size, hidden_size)
        nn.init.normal_(self.down.weight, std=init_std)
        nn.init.zeros_(self.down.bias)
        nn.init.normal_(self.up.weight, std=_UP_INIT_STD)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


class AdaptedLinear(nn.Linear):
    """A Linear followed by its adapter.

    It subclasses nn.Linear and keeps the original weight and bias as its own
    parameters, so the base weights keep their names (`...dense.weight`) in
    state dicts and `save_pretrained` output; the adapter adds `...dense.adapter.*`.
    """

    def __init__(self, linear: nn.Linear, adapter_size: int, init_std: float = 0.02):
        nn.Module.__init__(self)  # not nn.Linear.__init__: that would allocate and initialise a new weight
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.adapter = BottleneckAdapter(linear.out_features, adapter_size, init_std).to(
            device=linear.weight.device, dtype=linear.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(super().forward(x))


def _is_target(name: str, module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) and any(p.search(name) for p in _TARGET_PATTERNS)


def _is_layer_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")


def _head_modules(model: nn.Module) -> tuple[str, ...]:
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return _HEAD_MODULES + _ARCHITECTURE_HEAD_MODULES.get(model_type, ())


def _adapter_method_parameters(model: nn.Module) -> set[str]:
    """Names of the parameters this method trains: adapters, layer norms, pooler, head."""
    names = set()
    heads = _head_modules(model)
    for module_name, module in model.named_modules():
        parts = module_name.split(".")
        if isinstance(module, BottleneckAdapter) or _is_layer_norm(module) or any(p in heads for p in parts):
            names.update(name for name, _ in module.named_parameters(prefix=module_name))
    return names


def add_bottleneck_adapters(model: nn.Module, adapter_size: int = 64) -> list[str]:
    """Insert adapters in place; return the names of the wrapped projections. Freezes everything except: the adapters,
    all LayerNorm parameters, the classification head (`classifier`), and the pooler (`pooler`, if present)."""
    if not isinstance(adapter_size, int) or adapter_size < 1:
        raise ValueError(f"adapter_size must be a positive integer, got {adapter_size!r}")
    if any(isinstance(m, AdaptedLinear) for m in model.modules()):
        raise ValueError("model already has bottleneck adapters")
    targets = [name for name, module in model.named_modules() if _is_target(name, module)]
    if not targets:
        raise ValueError("model has no BERT-style attention/feed-forward output projections for adapters "
                         "(modules named '*.attention.output.dense' and 'layer.<N>.output.dense', or ModernBERT's "
                         "'layers.<N>.attn.Wo' and 'layers.<N>.mlp.Wo')")
    init_std = getattr(getattr(model, "config", None), "initializer_range", 0.02)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, AdaptedLinear(getattr(parent, child), adapter_size, init_std))
    trained = _adapter_method_parameters(model)
    for name, param in model.named_parameters():
        param.requires_grad = name in trained
    return targets


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


def _wrapped_modules(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, AdaptedLinear)]


def save_bottleneck(model: nn.Module, folder, base_model: str, adapter_size: int,
                    task: str = "text-classification") -> int:
    """Save ONLY the trainable parameters (adapters, layer norms, pooler, head) as safetensors + a small JSON config
    {"method": "bottleneck", "adapter_size", "base_model", "num_labels", "id2label", "label2id", "wrapped_modules",
    "saved_parameters"}. Return the size in bytes of what was written."""
    from safetensors.torch import save_file

    wrapped = _wrapped_modules(model)
    if not wrapped:
        raise ValueError("model has no bottleneck adapters to save (call add_bottleneck_adapters first)")
    # The method's parameters even if someone froze them since, plus anything the caller unfroze on top.
    keep = _adapter_method_parameters(model) | set(trainable_parameter_names(model))
    tensors = {name: param.detach().cpu().contiguous() for name, param in model.named_parameters() if name in keep}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
    config = model.config
    meta = {
        "method": "bottleneck",
        "task": task,
        "adapter_size": int(adapter_size),
        "base_model": str(base_model),
        "num_labels": int(config.num_labels),
        "id2label": {str(k): v for k, v in config.id2label.items()},
        "label2id": {str(k): int(v) for k, v in config.label2id.items()},
        "problem_type": getattr(config, "problem_type", None),
        "wrapped_modules": wrapped,
        "saved_parameters": sorted(tensors),
    }
    (folder / ADAPTER_CONFIG_NAME).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return (folder / ADAPTER_WEIGHTS_NAME).stat().st_size + (folder / ADAPTER_CONFIG_NAME).stat().st_size


def _read_config(folder: Path) -> dict:
    path = folder / ADAPTER_CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a bottleneck adapter folder: {ADAPTER_CONFIG_NAME} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("method") != "bottleneck":
        raise ValueError(f"{path} does not describe a bottleneck adapter (method != 'bottleneck')")
    return meta


def load_bottleneck(folder, base_model: str | None = None, device: str = "cpu"):
    """Rebuild: AutoModelForSequenceClassification.from_pretrained(base_model or config's base_model, num_labels,
    id2label, label2id), add_bottleneck_adapters(same size), load the saved tensors (strict about missing adapter
    weights: a missing key is an error), eval mode. Return the model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    folder = Path(folder)
    meta = _read_config(folder)
    weights = folder / ADAPTER_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no adapter weights: {ADAPTER_WEIGHTS_NAME} is missing")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{weights} is not a readable safetensors file: {exc}") from exc

    id2label = {int(k): v for k, v in meta["id2label"].items()}
    kwargs = {"num_labels": meta["num_labels"], "id2label": id2label, "label2id": meta["label2id"]}
    if meta.get("problem_type"):
        kwargs["problem_type"] = meta["problem_type"]
    auto_class = (AutoModelForTokenClassification if meta.get("task") == "token-classification"
                  else AutoModelForSequenceClassification)
    model = auto_class.from_pretrained(base_model or meta["base_model"], **kwargs)
    wrapped = add_bottleneck_adapters(model, int(meta["adapter_size"]))
    if sorted(wrapped) != sorted(meta.get("wrapped_modules", wrapped)):
        raise ValueError(f"base model {base_model or meta['base_model']} does not match the adapter in {folder}: "
                         f"it has {len(wrapped)} adapted projections, the adapter was trained with "
                         f"{len(meta['wrapped_modules'])}")

    # Strict both ways: every parameter the method trains must be in the file (a fresh pooler or head left
    # in place would silently change the answers), and every tensor in the file must land somewhere.
    params = dict(model.named_parameters())
    missing = sorted(_adapter_method_parameters(model) - tensors.keys())
    unexpected = sorted(tensors.keys() - params.keys())
    if missing or unexpected:
        raise ValueError(f"adapter weights in {folder} do not fit the model: "
                         f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    try:
        model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # shape mismatch: another hidden size or adapter size
        raise ValueError(f"adapter weights in {folder} do not fit the model: {exc}") from exc
    return model.to(device).eval()


def is_bottleneck_folder(folder) -> bool:
    folder = Path(folder)
    try:
        _read_config(folder)
    except (OSError, ValueError):
        return False
    return (folder / ADAPTER_WEIGHTS_NAME).is_file()

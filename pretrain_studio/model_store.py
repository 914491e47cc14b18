"""Saving and loading fine-tuned classifiers, whatever the method.

A fine-tuning run's `model/` folder is one of three standard layouts, plus a
small `studio_model.json` naming the method, the base model, the labels and the pooling
(`mean`: the classifier reads the mean of the token states; see pooling.py):

    full, top_layers   a complete Hugging Face model (config.json + model.safetensors) and tokenizer
    lora, adalora, ia3 a peft adapter (adapter_config.json + adapter_model.safetensors, with the pooler
                       and head as modules_to_save) and the tokenizer
    adapter            bottleneck adapters (bottleneck_config.json + bottleneck_model.safetensors) and tokenizer

Plain `transformers` + `peft` load the first two without this package:
`AutoModelForSequenceClassification.from_pretrained(base, num_labels=..., id2label=...)` then
`PeftModel.from_pretrained(model, folder)`. A mean-pooled classifier loaded that way reads [CLS] instead of
the mean, so its pooler must be fed the mean of the token states (the exported model card shows the lines).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from .pooling import apply_pooling, native_pooling

STUDIO_MODEL_FILE = "studio_model.json"
# studio_model.json's "task" -> the Auto class that rebuilds the model (pipeline task names, as Hugging Face writes
# them); folders from before token classification are text classifiers.
MODEL_CLASSES = {"text-classification": AutoModelForSequenceClassification,
                 "token-classification": AutoModelForTokenClassification}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def save_classifier(model, tokenizer, folder: str | Path, *, method: str, base_model: str, id2label: dict,
                    adapter_size: int | None = None, pooling: str = "cls", task: str = "text-classification") -> int:
    """Save the trained classifier in its method's layout; return the artefact's size in bytes (tokenizer excluded)."""
    from .bottleneck import save_bottleneck

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if method == "adapter":
        save_bottleneck(model, folder, base_model=str(base_model), adapter_size=adapter_size, task=task)
    elif hasattr(model, "peft_config"):
        model.peft_config["default"].base_model_name_or_path = str(base_model)
        model.save_pretrained(folder)
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    labels = {str(k): v for k, v in id2label.items()}
    (folder / STUDIO_MODEL_FILE).write_text(json.dumps({
        "task": task, "method": method, "base_model": str(base_model),
        "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}, "num_labels": len(labels),
        "pooling": pooling,
    }, indent=2) + "\n", encoding="utf-8")
    return artefact_bytes(folder)


def artefact_bytes(folder: str | Path) -> int:
    """Bytes of the model or adapter files, without the tokenizer and our small JSON."""
    skip = set(TOKENIZER_FILES) | {STUDIO_MODEL_FILE}
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file() and p.name not in skip)


def weight_files(folder: str | Path) -> list[Path]:
    """The weight files a model folder holds (full model, peft adapter or bottleneck adapters); empty when the
    weights are missing. Pre-flight checks and the prediction cache both ask this."""
    folder = Path(folder)
    return sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))


PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CODE_CONFIGS = ("config.json", "tokenizer_config.json")


def check_model_policy(folder: str | Path) -> None:
    """Raise ValueError unless a model folder can be loaded safely: safetensors weights only (a pickled
    pytorch_model.bin can run code when unpickled) and no custom code (an `auto_map` in config.json or
    tokenizer_config.json names Python files shipped with the model; we never set trust_remote_code).
    An adapter folder's base model (studio_model.json) is held to the same rule."""
    folder = Path(folder)
    for name in CODE_CONFIGS:
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # missing or broken: the loaders and pre-flight checks say so in their own words
        if isinstance(config, dict) and config.get("auto_map"):
            raise ValueError(f"{folder / name} asks for custom code (auto_map); Pretrain Studio never runs code "
                             "that comes with a model: use a model of a built-in architecture such as BERT")
    pickled = sorted(p.name for p in folder.glob("*") if p.suffix in PICKLED_WEIGHTS and p.is_file())
    if pickled and not any(folder.glob("*.safetensors")):
        raise ValueError(f"{folder} has only {', '.join(pickled)}: safetensors weights are required (pickled "
                         "weights can run code when loaded); re-save the model with save_pretrained(), which "
                         "writes model.safetensors")
    if (folder / STUDIO_MODEL_FILE).exists() and not (folder / "config.json").exists():
        base = Path(classifier_info(folder).get("base_model", ""))
        if base.is_dir() and base.resolve() != folder.resolve():
            check_model_policy(base)


def is_classifier_folder(folder: str | Path) -> bool:
    return (Path(folder) / STUDIO_MODEL_FILE).exists()


def classifier_info(folder: str | Path) -> dict:
    path = Path(folder) / STUDIO_MODEL_FILE
    if not path.exists():
        # A plain Hugging Face classifier folder (not made here): take the labels from its config.
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        id2label = config.get("id2label") or {str(i): str(i) for i in range(config.get("num_labels", 2))}
        architectures = config.get("architectures") or [""]
        task = "token-classification" if architectures[0].endswith("ForTokenClassification") else "text-classification"
        return {"method": "full", "base_model": str(folder), "id2label": id2label, "num_labels": len(id2label),
                "task": task}
    return json.loads(path.read_text(encoding="utf-8"))


def architecture_folder(folder: str | Path) -> Path:
    """The folder whose config.json describes this model's architecture: the folder itself, or for an
    adapter layout (peft or bottleneck) the base model it was trained on."""
    folder = Path(folder)
    if (folder / "config.json").exists() or not (folder / STUDIO_MODEL_FILE).exists():
        return folder
    return Path(classifier_info(folder)["base_model"])


def load_classifier(folder: str | Path, device: str = "cpu"):
    """(tokenizer, model in eval mode, info) for any of the three layouts."""
    from peft import PeftModel

    from .bottleneck import load_bottleneck

    folder = Path(folder)
    info = classifier_info(folder)
    id2label = {int(k): v for k, v in info["id2label"].items()}
    label2id = {v: k for k, v in id2label.items()}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    pooling = info.get("pooling")  # folders saved before the setting existed pool [CLS]
    auto_class = model_class(info)

    def pooled(model):
        if auto_class is not AutoModelForSequenceClassification:  # a token classifier reads every token
            return model
        if pooling is None and native_pooling(model):  # a plain ModernBERT folder pools as its config says
            return model
        return apply_pooling(model, pooling or "cls")

    if info["method"] == "adapter":
        model = pooled(load_bottleneck(folder, device=device))
    elif (folder / "adapter_config.json").exists():
        base = auto_class.from_pretrained(info["base_model"], num_labels=len(id2label), id2label=id2label,
                                          label2id=label2id)
        model = PeftModel.from_pretrained(pooled(base), folder)  # pooler first: peft wraps it
    else:
        model = pooled(auto_class.from_pretrained(folder))
    return tokenizer, model.to(device).eval(), info


def model_class(info: dict):
    """The Auto class of a classifier folder's task (studio_model.json's "task")."""
    task = info.get("task") or "text-classification"
    if task not in MODEL_CLASSES:
        raise ValueError(f"unknown model task {task!r} in {STUDIO_MODEL_FILE}; expected one of {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[task]


def is_token_classifier(folder: str | Path) -> bool:
    return classifier_info(folder).get("task") == "token-classification"


def load_encoder_weights_source(folder: str | Path):
    """For fine-tuning on top of a fine-tuned run: a plain model whose encoder carries the run's weights.
    Full/top-layer runs are already plain; peft runs are merged into their base; adapters cannot be merged."""
    info = classifier_info(folder)
    if info["method"] == "adapter":
        raise ValueError("a bottleneck-adapter run cannot serve as a base model (its adapters cannot be merged); "
                         "use its base model, or a full, top_layers or LoRA-style run")
    _, model, _ = load_classifier(folder)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


@torch.inference_mode()
def predict_proba(tokenizer, model, texts: list[str], pairs: list[str] | None = None, max_length: int = 512,
                  batch_size: int = 64) -> torch.Tensor:
    """Class probabilities for a list of texts (and optional second texts), in batches, rows in input order.

    Batches are made of texts of similar length, so each is padded only a little: a file of short and
    long texts taken in file order spends about half its compute on padding (2x the rows/s on SST-2)."""
    if not texts:
        return torch.empty(0)
    limit = min(max_length, getattr(model.config, "max_position_embeddings", max_length) or max_length)
    device = next(model.parameters()).device
    order = list(range(len(texts)))
    if len(texts) > batch_size:  # a single batch is padded to its longest text whatever the order
        # Token counts, not characters: a first tokenizing pass costs less than the padding it saves
        # (ordering by characters gains 1.6x on SST-2, by tokens 2.1x).
        lengths = [len(ids) for ids in tokenizer(texts, pairs, truncation=True, max_length=limit)["input_ids"]]
        order.sort(key=lengths.__getitem__)
    out = []
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = [texts[i] for i in chosen]
        second = [pairs[i] for i in chosen] if pairs else None
        encoded = tokenizer(batch, second, truncation=True, max_length=limit, padding=True, return_tensors="pt")
        logits = model(**{k: v.to(device) for k, v in encoded.items()}).logits
        out.append(logits.float().softmax(dim=-1).cpu())
    probabilities = torch.empty((len(texts), out[0].shape[1]))
    probabilities[torch.tensor(order)] = torch.cat(out)
    return probabilities

"""Trying models: fill-mask on MLM models, with a small cache of loaded models.

`fill_mask(model_dir, text, top_k)` returns, for each mask token in the text
(written as the model's own mask token, e.g. "[MASK]"), the top-k tokens with
their probabilities and the completed sentence.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

CACHE_SIZE = 3  # loaded models kept in memory; the least recently used is dropped
_cache: OrderedDict[tuple[str, str, float], tuple] = OrderedDict()
_lock = threading.Lock()


class PredictionError(ValueError):
    """Input the model cannot answer, with a message that says why."""


def cached_load(model_dir: str | Path, kind: str, loader, needs_config: bool = True):
    """Load a model folder once: cached by (path, kind, newest weights' modification time), so a retrained or
    re-saved folder is reloaded; the least recently used entry is dropped beyond CACHE_SIZE."""
    folder = Path(model_dir)
    weights = [p for p in folder.glob("*.safetensors")] + [p for p in folder.glob("*.bin")]
    if (needs_config and not (folder / "config.json").exists()) or not weights:
        raise PredictionError(f"no model files in {folder} (were they deleted?)")
    key = (str(folder.resolve()), kind, max(p.stat().st_mtime for p in weights))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    loaded = loader(folder)
    with _lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def load_mlm(model_dir: str | Path):
    """(tokenizer, model) for a saved MLM folder."""
    return cached_load(model_dir, "mlm", lambda folder: (AutoTokenizer.from_pretrained(folder),
                                                          AutoModelForMaskedLM.from_pretrained(folder).eval()))


def fill_mask(model_dir: str | Path, text: str, top_k: int = 5) -> list[list[dict]]:
    """Top-k predictions per mask: [[{token, score, sequence}, ...] per mask]."""
    tokenizer, model = load_mlm(model_dir)
    mask = tokenizer.mask_token
    if not text or mask not in text:
        raise PredictionError(f"the text needs at least one {mask} token to fill")
    top_k = max(1, min(int(top_k), 50))
    # Longer texts are cut to the model's positions rather than refused.
    limit = getattr(model.config, "max_position_embeddings", 512)
    encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=limit)
    ids = encoded["input_ids"][0]
    positions = (ids == tokenizer.mask_token_id).nonzero(as_tuple=True)[0]
    if len(positions) == 0:
        raise PredictionError(f"every {mask} token lies beyond the model's {limit} positions")
    with torch.inference_mode():
        logits = model(**encoded).logits[0, positions]
    probabilities = logits.float().softmax(dim=-1)
    results = []
    for row, position in zip(probabilities, positions.tolist()):
        scores, token_ids = row.topk(top_k)
        answers = []
        for score, token_id in zip(scores.tolist(), token_ids.tolist()):
            filled = ids.clone()
            filled[position] = token_id
            answers.append({
                "token": tokenizer.convert_ids_to_tokens(token_id),
                "score": score,
                "sequence": tokenizer.decode(filled, skip_special_tokens=True),
            })
        results.append(answers)
    return results


# --- classification -------------------------------------------------------------------

def load_cached_classifier(model_dir: str | Path):
    """(tokenizer, model, info) for a fine-tuned run's folder (any method's layout)."""
    from .model_store import load_classifier

    # Adapter layouts have no config.json of their own: their architecture comes from the base model.
    return cached_load(model_dir, "classifier", load_classifier, needs_config=False)


def classify(model_dir: str | Path, text: str, text_pair: str | None = None) -> dict:
    """{label, scores: {label: probability}} (texts longer than the model's positions are truncated)."""
    from .model_store import predict_proba

    tokenizer, model, _ = load_cached_classifier(model_dir)
    probabilities = predict_proba(tokenizer, model, [text], [text_pair] if text_pair else None)[0].tolist()
    names = [model.config.id2label[i] for i in range(len(probabilities))]
    scores = dict(zip(names, probabilities))
    return {"label": max(scores, key=scores.get), "scores": scores}


def predict_rows(model_dir: str | Path, texts: list[str], pairs: list[str] | None = None,
                 gold: list[str] | None = None) -> dict:
    """Predictions for many texts: rows for a CSV, plus accuracy, macro-F1 and the confusion matrix when the
    true labels are known (labels the model does not know count as errors)."""
    from .model_store import predict_proba

    tokenizer, model, _ = load_cached_classifier(model_dir)
    probabilities = predict_proba(tokenizer, model, texts, pairs).numpy()
    names = [model.config.id2label[i] for i in range(probabilities.shape[1])]
    predicted = [names[i] for i in probabilities.argmax(1)]
    rows = []
    for i, text in enumerate(texts):
        row = {"text": text}
        if pairs:
            row["text_pair"] = pairs[i]
        if gold is not None:
            row["label"] = gold[i]
        row["predicted"] = predicted[i]
        row["confidence"] = round(float(probabilities[i].max()), 6)
        row.update({f"p_{name}": round(float(p), 6) for name, p in zip(names, probabilities[i])})
        rows.append(row)
    metrics, misclassified = None, []
    if gold is not None:
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

        all_labels = names + sorted(set(gold) - set(names))
        metrics = {"accuracy": float(accuracy_score(gold, predicted)),
                   "f1": float(f1_score(gold, predicted, labels=names, average="macro", zero_division=0)),
                   "labels": all_labels,
                   "confusion_matrix": confusion_matrix(gold, predicted, labels=all_labels).tolist()}
        misclassified = [r for r in rows if r["label"] != r["predicted"]]
    return {"rows": rows, "metrics": metrics, "misclassified": misclassified}

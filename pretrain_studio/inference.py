"""Trying models: fill-mask on MLM models, with a small cache of loaded models.

`fill_mask(model_dir, text, top_k)` returns, for each mask token in the text
(written as the model's own mask token, e.g. "[MASK]"), the top-k tokens with
their probabilities and the completed sentence.

A text longer than the model's positions is cut, never refused: the model reads
a window of its positions around the masks (the start of the text when every
mask lies there), and masks too far apart for one window are read in windows of
their own, so every mask is answered; each answer's `sequence` is then the text
of its window, not the whole text. Classification truncates long texts to their
first tokens.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

CACHE_SIZE = 3  # loaded models kept in memory; the least recently used is dropped
MAX_TOP_K = 50
WINDOW_BATCH = 16  # windows of one long text run through the model together
_cache: OrderedDict[tuple[str, str, float], tuple] = OrderedDict()
_lock = threading.Lock()


class PredictionError(ValueError):
    """Input the model cannot answer, with a message that says why."""


def cached_load(model_dir: str | Path, kind: str, loader, needs_config: bool = True):
    """Load a model folder once: cached by (path, kind, newest weights' modification time), so a retrained or
    re-saved folder is reloaded; the least recently used entry is dropped beyond CACHE_SIZE."""
    from .model_store import architecture_folder, weight_files

    folder = Path(model_dir)
    if not folder.is_dir():
        raise PredictionError(f"the model folder {folder} is gone (was it deleted?)")
    weights = weight_files(folder)
    if (needs_config and not (folder / "config.json").exists()) or not weights:
        raise PredictionError(f"no model files in {folder} (were they deleted?)")
    base = architecture_folder(folder)
    if base != folder and not weight_files(base):  # an adapter is nothing without the model it adapts
        raise PredictionError(f"the base model of {folder} is missing: {base} (was it deleted?)")
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
    """Top-k predictions per mask, in the order of the masks: [[{token, score, sequence}, ...] per mask]."""
    try:
        top_k = max(1, min(int(top_k), MAX_TOP_K))
    except (TypeError, ValueError):
        raise PredictionError(f"top_k: {top_k!r} is not a whole number") from None
    tokenizer, model = load_mlm(model_dir)
    mask = tokenizer.mask_token
    if not text or mask not in text:
        raise PredictionError(f"text: the text has no {mask} token; write {mask} where the missing word goes, "
                              f"e.g. \"Paris is the {mask} of France.\"")
    full = tokenizer(text, verbose=False)["input_ids"]
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    # The special tokens around a text ([CLS] ... [SEP] for BERT) are put back around every window.
    prefix = next(k for k in range(len(full) - len(ids) + 1) if full[k:k + len(ids)] == ids)
    before, after = full[:prefix], full[prefix + len(ids):]
    masks = [i for i, token_id in enumerate(ids) if token_id == tokenizer.mask_token_id]
    if not masks:  # the mark is in the text but the tokenizer split it (e.g. glued to a word)
        raise PredictionError(f"text: no {mask} token survived tokenisation; put spaces around {mask}")
    windows = _mask_windows(masks, len(ids), _positions(tokenizer, model) - len(before) - len(after))
    results: list[list[dict]] = []
    for first in range(0, len(windows), WINDOW_BATCH):
        chosen = windows[first:first + WINDOW_BATCH]
        inputs = torch.tensor([before + ids[a:b] + after for a, b, _ in chosen])
        with torch.inference_mode():
            logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits
        for window_ids, window_logits, (start, _, members) in zip(inputs, logits, chosen):
            for position in members:
                at = position - start + prefix
                results.append(_answers(tokenizer, window_ids, window_logits[at], at, top_k))
    return results


def _positions(tokenizer, model) -> int:
    """Tokens the model reads at once: its position embeddings, or the tokenizer's limit when that is lower."""
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:  # e.g. RoBERTa's offset positions
        limit = tokenizer_limit
    return limit


def _mask_windows(masks: list[int], length: int, room: int) -> list[tuple[int, int, list[int]]]:
    """Cut a text of `length` tokens into windows of at most `room` tokens that cover every mask:
    [(start, end, mask positions inside)], in text order. The first window starts at the text's beginning when its
    first mask fits there; any other window is centred on the first mask it holds."""
    if length <= room:
        return [(0, length, masks)]
    windows, left = [], list(masks)
    while left:
        start = max(0, min(left[0] - room // 2, length - room))
        if not windows and left[0] < room:
            start = 0
        end = start + room
        windows.append((start, end, [m for m in left if m < end]))
        left = [m for m in left if m >= end]
    return windows


def _answers(tokenizer, window_ids: torch.Tensor, logits: torch.Tensor, at: int, top_k: int) -> list[dict]:
    """The top-k tokens for the mask at index `at` of a window, each with the window's text completed by it."""
    scores, token_ids = logits.float().softmax(dim=-1).topk(top_k)
    answers = []
    for score, token_id in zip(scores.tolist(), token_ids.tolist()):
        filled = window_ids.clone()
        filled[at] = token_id
        answers.append({"token": tokenizer.convert_ids_to_tokens(token_id), "score": score,
                        "sequence": tokenizer.decode(filled, skip_special_tokens=True)})
    return answers


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

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
_cache: OrderedDict[tuple[str, float], tuple] = OrderedDict()
_lock = threading.Lock()


class PredictionError(ValueError):
    """Input the model cannot answer, with a message that says why."""


def load_mlm(model_dir: str | Path):
    """(tokenizer, model) for a saved MLM folder, cached by path and modification time."""
    folder = Path(model_dir)
    weights = [p for p in folder.glob("*.safetensors")] + [p for p in folder.glob("pytorch_model*.bin")]
    if not (folder / "config.json").exists() or not weights:
        raise PredictionError(f"no model files in {folder} (were they deleted?)")
    key = (str(folder.resolve()), max(p.stat().st_mtime for p in weights))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    with _lock:
        _cache[key] = (tokenizer, model)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return tokenizer, model


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

"""Trying token classifiers: the entities in a text, and the tags of many tokenised sentences.

`tag_entities(model_dir, text)` splits the text into words (runs of letters or digits, each punctuation mark, and
each Chinese, Japanese or Korean character on its own, as character-per-line NER files have them), tags them
with the model (long texts in overlapping windows, see training/token_alignment.py) and returns the entities as
character spans of the text: `{"start", "end", "type", "score", "text"}`, with `type` without its B-/I- prefix
and `score` the mean probability of the entity's words' tags. `tag_sentences(model_dir, sentences)` tags
sentences already split into tokens (a CoNLL or JSON Lines file) and returns IOB2 tags per token.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .data.tag_schemes import entity_spans, repair_iob2
from .inference import PredictionError, load_cached_classifier
from .training.token_alignment import encode_windows, word_scores

# CJK ideographs (with extension A and compatibility forms), kana and hangul: one word per character.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+|[^\\w\\s]")
MAX_WINDOW = 512  # sub-tokens per window, within the model's positions
_BATCH = 32


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of each word of a raw text."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


@torch.inference_mode()
def _word_probabilities(tokenizer, model, sentences: list[list[str]]) -> list[np.ndarray]:
    limit = min(MAX_WINDOW, getattr(model.config, "max_position_embeddings", MAX_WINDOW) or MAX_WINDOW)
    windows = encode_windows(tokenizer, sentences, None, limit)
    device = next(model.parameters()).device
    order = sorted(range(len(windows["input_ids"])), key=lambda i: len(windows["input_ids"][i]))
    per_window: list[np.ndarray | None] = [None] * len(order)
    for start in range(0, len(order), _BATCH):
        chosen = order[start:start + _BATCH]
        batch = tokenizer.pad({"input_ids": [windows["input_ids"][i] for i in chosen],
                               "attention_mask": [windows["attention_mask"][i] for i in chosen]}, return_tensors="pt")
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().softmax(-1).cpu().numpy()
        for row, i in enumerate(chosen):
            per_window[i] = logits[row, :len(windows["input_ids"][i])]
    return word_scores(windows, per_window, [len(s) for s in sentences])


def _loaded(model_dir):
    tokenizer, model, info = load_cached_classifier(model_dir)
    if info.get("task") != "token-classification":
        raise PredictionError(f"{Path(model_dir).name} is a text classifier, not a token classifier: classify "
                              "texts with it instead")
    return tokenizer, model


def tag_sentences(model_dir: str | Path, sentences: list[list[str]]) -> tuple[list[list[str]], list[list[float]]]:
    """(IOB2 tags, the probability of each tag) per token of each sentence."""
    tokenizer, model = _loaded(model_dir)
    names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    tags, scores = [], []
    filled = [s for s in sentences if s]
    probabilities = iter(_word_probabilities(tokenizer, model, filled) if filled else [])
    for sentence in sentences:
        if not sentence:
            tags.append([]), scores.append([])
            continue
        p = next(probabilities)
        tags.append(repair_iob2([names[i] for i in p.argmax(-1)]))
        scores.append([float(x) for x in p.max(-1)])
    return tags, scores


def tag_entities(model_dir: str | Path, text: str) -> list[dict]:
    """The entities of a raw text as character spans (see the module docstring)."""
    return tag_texts(model_dir, [text])[0]


def tag_texts(model_dir: str | Path, texts: list[str]) -> list[list[dict]]:
    """The entities of many raw texts, tagged in batches (one model call per batch, not per text)."""
    split = [split_words(text) for text in texts]
    tags, scores = tag_sentences(model_dir, [[w for w, _, _ in words] for words in split])
    return [_spans(text, words, t, s) for text, words, t, s in zip(texts, split, tags, scores)]


def _spans(text: str, words: list[tuple[str, int, int]], tags: list[str], scores: list[float]) -> list[dict]:
    out = []
    for start, end, kind in entity_spans(tags):
        begin, finish = words[start][1], words[end - 1][2]
        out.append({"start": begin, "end": finish, "type": kind,
                    "score": round(float(np.mean(scores[start:end])), 6), "text": text[begin:finish]})
    return out


def tag_file(model_dir: str | Path, source: Path, out_stem: Path, max_rows: int) -> dict:
    """Tag a file and write the predictions beside it in its own format (see PredictionService.tag_file)."""
    import json

    from .data.labelled_readers import DatasetError
    from .data.token_readers import looks_like_token_file, read_token_file
    from .training.entity_metrics import entity_report, error_table

    if not looks_like_token_file(source):
        texts = [line.rstrip("\r\n") for line in source.read_text(encoding="utf-8", errors="replace").splitlines()]
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise DatasetError(f"{source.name}: no text to tag")
        if len(texts) > max_rows:
            raise DatasetError(f"{source.name}: more than {max_rows:,} texts; split the file into smaller ones")
        out = out_stem.with_suffix(".jsonl")
        with out.open("w", encoding="utf-8") as fh:
            for text, entities in zip(texts, tag_texts(model_dir, texts)):
                fh.write(json.dumps({"text": text, "entities": entities}, ensure_ascii=False) + "\n")
        return {"file": str(out), "rows": len(texts), "metrics": None, "error_table": []}
    from .data.tag_schemes import TagProblems, TagSchemeError, detect_scheme, to_iob2

    token_file = read_token_file(source)
    if len(token_file.sentences) > max_rows:
        raise DatasetError(f"{source.name}: more than {max_rows:,} sentences; split the file into smaller ones")
    try:
        scheme = detect_scheme({token_file.name: token_file.first_place}, (s.tags for s in token_file.sentences))
    except TagSchemeError as exc:
        raise DatasetError(str(exc)) from None
    words = [s.tokens for s in token_file.sentences]
    gold = [to_iob2(s.tags, scheme, TagProblems()) for s in token_file.sentences]
    predicted, _ = tag_sentences(model_dir, words)
    if token_file.kind == "jsonl":
        out = out_stem.with_suffix(".jsonl")
        with out.open("w", encoding="utf-8") as fh:
            for tokens, g, p in zip(words, gold, predicted):
                fh.write(json.dumps({"tokens": tokens, "ner_tags": g, "predicted": p}, ensure_ascii=False) + "\n")
    else:
        out = out_stem.with_suffix(".conll")
        with out.open("w", encoding="utf-8") as fh:
            for tokens, g, p in zip(words, gold, predicted):
                fh.write("".join(f"{t} {a} {b}\n" for t, a, b in zip(tokens, g, p)) + "\n")
    return {"file": str(out), "rows": len(words), "metrics": entity_report(gold, predicted),
            "error_table": error_table(words, gold, predicted)}

"""Words to sub-tokens and back: how a token classifier reads a tagged sentence and how its answers return.

A word's tag goes on its first sub-token; the word's other sub-tokens are left out of the loss (-100), or, with
`label_all_subtokens`, carry the word's tag too (B-X as I-X after the first). A word's prediction is always its
first sub-token's. A sentence longer than `max_length` sub-tokens is never cut: it is read in overlapping windows
(a quarter of the window overlaps the next), and each word's answer is taken from the window in which it sits
farthest from an edge, where the model saw most context on both sides.
"""

from __future__ import annotations

import numpy as np

IGNORED = -100  # the loss skips these positions


def encode_windows(tokenizer, sentences: list[list[str]], tags: list[list[int]] | None, max_length: int,
                   label_all_subtokens: bool = False, inside_of: dict[int, int] | None = None) -> dict:
    """{"input_ids", "attention_mask", "labels" (with tags), "sentence", "word_ids"}: one entry per window.
    `inside_of` maps a B- tag id to its I- id (for label_all_subtokens)."""
    stride = max(1, max_length // 4)
    encoded = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True)
    out = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
           "sentence": list(encoded["overflow_to_sample_mapping"]), "word_ids": []}
    labels = []
    for window, sentence in enumerate(out["sentence"]):
        words = encoded.word_ids(window)
        out["word_ids"].append([-1 if w is None else w for w in words])
        if tags is None:
            continue
        row, previous = [], None
        for w in words:
            if w is None:
                row.append(IGNORED)
            elif w != previous:
                row.append(tags[sentence][w])
            elif label_all_subtokens:
                tag = tags[sentence][w]
                row.append(inside_of.get(tag, tag) if inside_of else tag)
            else:
                row.append(IGNORED)
            previous = w
        labels.append(row)
    if tags is not None:
        out["labels"] = labels
    return out


def word_scores(windows: dict, logits: list[np.ndarray], lengths: list[int]) -> list[np.ndarray]:
    """Per sentence, a (words, ...) array of what each word's first sub-token got (logits, features or label ids,
    one entry per position of each window), from the window in which it sits farthest from an edge. A word the
    tokenizer gave no sub-token (a stray control character) gets zeros: its tag is then the first label, O."""
    sample = np.asarray(logits[0]) if len(logits) else np.zeros((1,))
    shape, dtype = sample.shape[1:], sample.dtype  # (labels,) for logits or features, () for label ids
    out = [np.zeros((n, *shape), dtype=dtype) for n in lengths]
    margin = [np.full(n, -1, dtype=np.int64) for n in lengths]
    for window, sentence in enumerate(windows["sentence"]):
        words = windows["word_ids"][window]
        content = [j for j, w in enumerate(words) if w >= 0]
        if not content:
            continue
        first, last = content[0], content[-1]
        previous = None
        for j in content:
            w = words[j]
            if w != previous:
                room = min(j - first, last - j)
                if room > margin[sentence][w]:
                    margin[sentence][w] = room
                    out[sentence][w] = logits[window][j]
            previous = w
    return out

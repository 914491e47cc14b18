"""Chinese text: which characters count as CJK, counting them, and jieba word boundaries for whole-word masking.

CJK here means what BERT's tokenizer treats as a Chinese character (`_is_chinese_char` in Google's BERT and
`handle_chinese_chars` in `tokenizers`' BertNormalizer): the CJK Unified Ideographs and their extensions and
the compatibility ideographs. Those are the characters the WordPiece tokenizer splits into one token each, so
they are the ones the corpus statistics count one by one and the ones jieba groups into words. Kana, Hangul and
full-width punctuation are not in the ranges (BERT treats the punctuation as punctuation: also split alone).

`chinese_word_starts` is the packing-time half of Chinese whole-word masking (Cui et al. 2019, "Pre-Training
with Whole Word Masking for Chinese BERT"): the text is segmented by jieba, and a token that is a single CJK
character continues the previous token's word when both lie in the same jieba word. Other tokens keep
WordPiece's rule (a "##" piece continues the word before it). jieba is imported only when that is used: its
dictionary ships in its wheel, so nothing is downloaded; it builds a prefix-dictionary cache in the temp folder
on first use (about a second).
"""

from __future__ import annotations

import re

import numpy as np

# BERT's ranges (tokenization.py `_is_chinese_char`), as (first, last) code points.
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
CJK_PATTERN = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES) + "]")


def cjk_mask(code_points: np.ndarray) -> np.ndarray:
    """Which of these code points are CJK characters (vectorised: one comparison pair per range)."""
    mask = np.zeros(code_points.shape, dtype=bool)
    for first, last in CJK_RANGES:
        mask |= (code_points >= first) & (code_points <= last)
    return mask


def count_cjk(text: str) -> int:
    """CJK characters in `text` (0 at once for ASCII text, the common case of English corpora)."""
    return 0 if text.isascii() else len(CJK_PATTERN.findall(text))


def count_words(text: str) -> tuple[int, int]:
    """(words, CJK characters) of a document, where a word is what BERT's pre-tokeniser makes of it before
    WordPiece: each CJK character is a word of its own (Chinese puts no spaces between words, so splitting at
    whitespace would count a whole sentence as one word) and other text is split at whitespace."""
    if text.isascii() or not CJK_PATTERN.search(text):  # a scan without a match allocates nothing: 3x faster
        return len(text.split()), 0
    spaced, cjk = CJK_PATTERN.subn(" ", text)
    return cjk + len(spaced.split()), cjk


def code_points(text: str) -> np.ndarray:
    """The text's characters as an array of code points (one uint32 per character, as Python indexes them)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict..." on every packing process's stderr
    return jieba


def jieba_word_ends(text: str) -> np.ndarray:
    """Character offsets where each jieba word of `text` ends (jieba's pieces cover the text exactly)."""
    lengths = [len(word) for word in _jieba().cut(text)]
    return np.cumsum(lengths, dtype=np.int64)


def chinese_word_starts(text: str, offsets, continuation: np.ndarray) -> list[int]:
    """For each token of `text` (its character `offsets`, whether it is a "##" piece): 1 where it begins a word,
    0 where it continues the previous token's word. A token that is one CJK character continues the previous
    token when that is also one CJK character of the same jieba word; any other token begins a word unless it
    is a "##" piece. Text without CJK characters is not segmented at all (no jieba cost)."""
    n = len(continuation)
    if n == 0:
        return []
    starts = ~np.asarray(continuation, dtype=bool)
    if text.isascii() or not CJK_PATTERN.search(text):
        return starts.astype(np.int8).tolist()
    spans = np.asarray(offsets, dtype=np.int64).reshape(n, 2)
    first, last = spans[:, 0], spans[:, 1]
    points = code_points(text)
    single = (last - first == 1) & (first < len(points))
    is_cjk = np.zeros(n, dtype=bool)
    is_cjk[single] = cjk_mask(points[first[single]])
    word = np.searchsorted(jieba_word_ends(text), first, side="right")  # index of the jieba word a token opens in
    same_word = np.zeros(n, dtype=bool)
    same_word[1:] = is_cjk[1:] & is_cjk[:-1] & (word[1:] == word[:-1])
    starts[is_cjk] = True
    starts[same_word] = False
    starts[0] = True  # a document's first token always begins a word
    return starts.astype(np.int8).tolist()


class CharacterSet:
    """Which characters occur: one flag per Unicode code point (1.1 MB), filled from texts in chunks.

    Texts are collected until about a million characters are pending, then flagged at once with numpy (the
    chunk's code points and a bincount: C speed, where a Python set would visit each character). Memory is
    the flags plus one chunk, whatever the corpus's size."""

    CHUNK_CHARS = 1 << 20

    def __init__(self):
        self._seen = np.zeros(0x110000, dtype=bool)
        self._pending: list[str] = []
        self._pending_chars = 0

    def add(self, text: str) -> None:
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars >= self.CHUNK_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._seen[np.flatnonzero(np.bincount(code_points("".join(self._pending))))] = True
            self._pending, self._pending_chars = [], 0

    def distinct(self) -> int:
        self._flush()
        return int(np.count_nonzero(self._seen))

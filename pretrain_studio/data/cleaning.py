"""Corpus cleaning filters (issue 16): Project Gutenberg header and licence, boilerplate lines, near-duplicates.

Exact de-duplication needs the whole corpus: `DuplicateCounter` keeps the document hashes on disk as they come,
and corpus.py drops the repeats once the Arrow file is finished. The other filters work on the stream of a .txt
file's lines, or, for near-duplicates, on documents one by one:

* `gutenberg_markers` + `strip_gutenberg`: per FILE, before it is split into documents. Text before the start
  marker (`*** START OF THIS PROJECT GUTENBERG EBOOK ... ***`, `***START OF THE PROJECT GUTENBERG EBOOK ...***`,
  or the 1990s layout's `*END*THE SMALL PRINT! ...` that ends its header) and from the end marker on
  (`*** END OF THE PROJECT GUTENBERG EBOOK ...`, or the `End of the Project Gutenberg EBook of ...` line just
  before it, which old files have alone) is dropped. `*** START: FULL LICENSE ***` starts the licence, not the
  book, and is no marker. A file with no marker is left as is; one with an end marker and no start marker (NLTK's
  copies, whose header was already cut) loses its footer only. The markers are found in a first pass over the
  file, so that the filter knows, before it drops a line, whether a start marker is coming at all.
* `drop_boilerplate`: lines that are too short or mostly not letters (page numbers, `* * *` separators, rules of
  dashes, tables of numbers). In "lines" mode such a line is a document that is dropped; in "paragraphs" mode
  the line is dropped before the paragraph's lines are joined.
* `NearDuplicateFilter`: MinHash LSH (datasketch) on word 5-shingles; a document whose estimated Jaccard
  similarity with an earlier kept document is at least 0.8 is dropped. Its index is in memory and grows with the
  corpus (about 1 KB per kept document), which is why it is off by default.

No gradio here, and datasketch is imported only when the near-duplicate filter is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .chinese import CJK_PATTERN
from .readers import CorpusError

# --------------------------------------------------------------------------------- boilerplate lines

# A line is boilerplate when it has fewer than this many letters: page numbers ("23", "[p. 4]"), roman numerals
# ("IV."), separators ("* * * * *"). Three keeps the shortest real lines that carry words ("Yes.", "Oh!  Ah!").
BOILERPLATE_MIN_LETTERS = 3
# ... or when under this share of its non-space characters are letters: rules ("-----"), tables of numbers
# ("1811    £ 4,000   12s. 6d."), ASCII art. Half keeps prose with numbers and punctuation ("Chapter 12.").
BOILERPLATE_MIN_LETTER_SHARE = 0.5
# Letters as str.isalpha counts them (any script, CJK ideographs included): word characters that are no digit
# and no underscore. Lines of non-letters get counted in C by removing what is not one.
_NOT_LETTER = re.compile(r"[\W\d_]+")
_SPACE = re.compile(r"\s+")


def is_boilerplate_line(line: str) -> bool:
    """True for a non-blank line with fewer than BOILERPLATE_MIN_LETTERS letters, or whose letters are under
    BOILERPLATE_MIN_LETTER_SHARE of its non-space characters. A blank line is not boilerplate (it separates
    paragraphs, and is counted as an empty line)."""
    line = line.strip()
    if not line:
        return False
    letters = len(_NOT_LETTER.sub("", line))
    if letters < BOILERPLATE_MIN_LETTERS:
        return True
    if letters >= BOILERPLATE_MIN_LETTER_SHARE * len(line):  # prose: decided without counting the spaces
        return False
    visible = len(line) - sum(len(space) for space in _SPACE.findall(line))
    return letters < BOILERPLATE_MIN_LETTER_SHARE * visible


def drop_boilerplate(lines: Iterable[str], on_drop: Callable[[], None]) -> Iterator[str]:
    """The lines without boilerplate lines (`is_boilerplate_line`); `on_drop` is called once for each one dropped."""
    for line in lines:
        if is_boilerplate_line(line):
            on_drop()
            continue
        yield line


# ------------------------------------------------------------------------------------ Project Gutenberg

# "*** START OF THIS PROJECT GUTENBERG EBOOK X ***", "***START OF THE PROJECT GUTENBERG EBOOK X***", and the
# 1990s layout, whose header (with "THE SMALL PRINT!" licence) ends at "*END*THE SMALL PRINT! ... *END*".
# Not "*** START: FULL LICENSE ***" (the licence after the book) nor "***START**THE SMALL PRINT!**" (its start).
_START = re.compile(r"\s*(\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG|\*END\*\s*THE SMALL PRINT)", re.IGNORECASE)
# "*** END OF THIS PROJECT GUTENBERG EBOOK X ***", "***END OF THE PROJECT GUTENBERG EBOOK X***", and the line
# "End of the Project Gutenberg EBook of X" / "End of Project Gutenberg's X" / "End of The Project Gutenberg Etext
# of X" that comes just before it (alone, in 1990s files). Not "*** END: FULL LICENSE ***".
_END = re.compile(r"\s*(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|END OF (THE )?PROJECT GUTENBERG)", re.IGNORECASE)


def gutenberg_markers(lines: Iterable[str]) -> dict[int, str]:
    """{line index: "start" | "end"} for the Project Gutenberg marker lines among `lines` (from `read_lines`)."""
    markers = {}
    for index, line in enumerate(lines):
        if not line.lstrip().startswith(("*", "E", "e")):  # every marker starts so: skip the regex for the rest
            continue
        if _START.match(line):
            markers[index] = "start"
        elif _END.match(line):
            markers[index] = "end"
    return markers


def strip_gutenberg(lines: Iterable[str], markers: dict[int, str], on_drop: Callable[[], None]) -> Iterator[str]:
    """The lines of the book: without what comes before a start marker and from an end marker on (markers from
    `gutenberg_markers` on the same lines). `on_drop` is called once for each non-blank line dropped, marker lines
    included. With no marker at all the lines pass unchanged; with end markers only, the text before the first is
    kept. A later start marker (books joined in one file) begins a book again."""
    if not markers:
        yield from lines
        return
    inside = "start" not in markers.values()
    for index, line in enumerate(lines):
        kind = markers.get(index)
        if kind is not None:
            inside = kind == "start"
            on_drop()
            continue
        if inside:
            yield line
        elif line.strip():
            on_drop()


# ---------------------------------------------------------------------------------------- near-duplicates

NEAR_DUPLICATE_THRESHOLD = 0.8  # estimated Jaccard similarity of the word shingle sets, at or above which a document goes
SHINGLE_WORDS = 5  # a shingle is 5 consecutive words (lower-cased, split at whitespace; each CJK character a word)
MINHASH_PERMUTATIONS = 128  # datasketch's default; the LSH bands are chosen by datasketch for the threshold


def shingles(text: str) -> list[bytes]:
    """The document's word 5-shingles as bytes. A document of fewer than 5 words is one shingle of all its words,
    so short documents are near-duplicates only of the same words."""
    text = text.lower()
    if not text.isascii() and CJK_PATTERN.search(text):
        text = CJK_PATTERN.sub(r" \g<0> ", text)
    words = text.split()
    if len(words) <= SHINGLE_WORDS:
        return [" ".join(words).encode("utf-8", "replace")]
    return list({" ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8", "replace")
                 for i in range(len(words) - SHINGLE_WORDS + 1)})


class NearDuplicateFilter:
    """`is_repeat(text)`: is the document a near-duplicate of one seen (and kept) before? If not, it is remembered.

    Candidates come from a MinHash LSH index and are confirmed with the MinHash estimate of the Jaccard similarity
    against the stored signature of the candidate (LSH alone lets some pairs below the threshold through).
    Memory grows with the documents kept: the index and one 512-byte signature per document."""

    def __init__(self, threshold: float = NEAR_DUPLICATE_THRESHOLD, num_perm: int = MINHASH_PERMUTATIONS):
        try:
            from datasketch import MinHash, MinHashLSH
        except ImportError as exc:  # a requirement, but an environment may lack it: say what to install
            raise CorpusError("near_duplicates needs the datasketch package: pip install datasketch") from exc

        self._minhash = MinHash
        self._threshold = threshold
        self._num_perm = num_perm
        self._permutations = MinHash(num_perm=num_perm, seed=1).permutations  # made once, not per document
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint32)
        self._kept = 0

    def is_repeat(self, text: str) -> bool:
        sketch = self._minhash(num_perm=self._num_perm, permutations=self._permutations, scheme="affine32")
        sketch.update_batch(shingles(text))
        signature = sketch.hashvalues
        candidates = self._lsh.query(sketch)
        if candidates:
            agreement = (self._signatures[np.asarray(candidates)] == signature).mean(axis=1)
            if agreement.max() >= self._threshold:
                return True
        if self._kept == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        self._signatures[self._kept] = signature
        self._lsh.insert(self._kept, sketch, check_duplication=False)
        self._kept += 1
        return False


# --- exact duplicates ------------------------------------------------------------------------------------

# Document hashes (with their rows) are spilled to disk in buffers of this many (2 MB).
DIGEST_BUFFER = 1 << 17
DIGEST_BUCKETS = 256


class DuplicateCounter:
    """Finds documents whose exact text occurred earlier, in memory that does not grow with the corpus.

    A set of the 8-byte hashes in memory costs about 90 bytes per document (over 250 MB for a 200 MB
    corpus of short lines). Instead each hash, with its document's row number, is buffered (1 MB) and
    spilled to 256 bucket files on disk by the hash's last byte; at the end each bucket is read and
    checked on its own, so a bucket holds 1/256 of the hashes (16 bytes per document on disk, about
    60 kB of memory per million documents). Repeats = hashes - distinct hashes, as the set counted
    them; `repeat_rows` also says which rows they are (every occurrence after the first), as a bitmap
    of one bit per document. (Two different texts share an 8-byte hash with odds of about 1 in 10^7
    for a corpus of a million documents; the later one would be dropped.)
    """

    def __init__(self, folder: Path):
        self._folder = folder
        self._folder.mkdir()
        self._pending = bytearray()  # 8-byte hash, 8-byte row, hash, row, ...

    def add(self, digest: bytes, row: int) -> None:
        self._pending += digest
        self._pending += row.to_bytes(8, "little")
        if len(self._pending) >= 16 * DIGEST_BUFFER:
            self._spill()

    def _spill(self) -> None:
        if not self._pending:
            return
        pairs = np.frombuffer(bytes(self._pending), dtype="<u8").reshape(-1, 2)
        self._pending.clear()
        buckets = (pairs[:, 0] >> np.uint64(56)).astype(np.uint8)
        order = np.argsort(buckets, kind="stable")  # stable: rows stay ascending within each bucket
        pairs, buckets = pairs[order], buckets[order]
        bounds = np.searchsorted(buckets, np.arange(DIGEST_BUCKETS + 1))
        for bucket in np.flatnonzero(np.diff(bounds)):
            with open(self._folder / f"{bucket:02x}", "ab") as fh:
                fh.write(pairs[bounds[bucket] : bounds[bucket + 1]].tobytes())

    def _buckets(self) -> Iterable[np.ndarray]:
        self._spill()
        for path in sorted(self._folder.iterdir()):
            yield np.fromfile(path, dtype=np.uint64).reshape(-1, 2)

    def repeats(self) -> int:
        return sum(len(pairs) - len(np.unique(pairs[:, 0])) for pairs in self._buckets())

    def repeat_rows(self, documents: int) -> tuple[np.ndarray | None, int]:
        """(bitmap of the repeated rows, little-endian bits, or None when there are none; how many there are)."""
        bitmap, total = None, 0
        for pairs in self._buckets():
            # return_index gives each hash's first occurrence (numpy sorts stably for it); rows ascend in a bucket.
            first = np.unique(pairs[:, 0], return_index=True)[1]
            if len(first) == len(pairs):
                continue
            repeated = np.ones(len(pairs), dtype=bool)
            repeated[first] = False
            rows = pairs[repeated, 1].astype(np.int64)
            if bitmap is None:
                bitmap = np.zeros((documents + 7) // 8, dtype=np.uint8)
            np.bitwise_or.at(bitmap, rows >> 3, (1 << (rows & 7)).astype(np.uint8))
            total += len(rows)
        return bitmap, total


def bitmap_bits(bitmap: np.ndarray, start: int, n: int) -> np.ndarray:
    """Rows start .. start + n - 1 of a little-endian bitmap, as booleans."""
    first, last = start >> 3, (start + n + 7) >> 3
    bits = np.unpackbits(bitmap[first:last], bitorder="little")
    offset = start - (first << 3)
    return bits[offset : offset + n].astype(bool)

"""Corpus ingestion: turn the user's text files into one Arrow dataset for MLM pretraining.

`ingest_corpus` reads .txt, .jsonl/.json, .csv, .tsv and .parquet files (each optionally
gzipped), cleans the documents, and saves them as a `datasets.Dataset` with one column,
"text", in the `save_to_disk` layout. It returns `CorpusStats` for the UI to show.

Design points:

* Streaming. A corpus can be many GB, so no file is ever read whole into memory, and
  memory does not grow with the corpus. Text is decoded incrementally and documents go in
  bounded batches straight into the dataset's Arrow file (the file `save_to_disk` would
  write); the duplicate check keeps its document hashes on disk, not in a set.
* Clean by default (issue 16). Exact duplicate documents are removed (`dedupe=True`): the first
  occurrence stays, and the repeats are found from the hashes on disk once every file is read and
  dropped in one more streaming pass over the Arrow file (memory: one bit per document). Because
  this happens at ingest, the held-out split of mlm_data.held_out_split, taken from the stored
  corpus, can never hold a text that also sits in training. Optional filters (cleaning.py), off by
  default: Project Gutenberg header and licence (per file, before it is cut into documents),
  boilerplate lines, near-duplicates (MinHash LSH). `stats.removed` says how much each one took.
* Honest decoding. UTF-8 is tried first, then cp1252, then Latin-1. Each file's chosen
  encoding is reported, because a wrong guess shows up later as garbage tokens.
* All or nothing. The corpus is built in a temporary sibling of `dest_dir` and renamed
  into place only when everything succeeded. A failed ingest leaves nothing at `dest_dir`.
* Chinese counts right. A "word" is what BERT's pre-tokeniser makes of the text: each CJK character is one
  (Chinese puts no spaces between words, so whitespace splitting would count a sentence as one word) and
  other text is split at whitespace; English corpora count exactly as before. The stats also give the CJK
  characters and the number of distinct characters (a Chinese corpus has thousands; each needs a slot in the
  tokenizer's vocabulary), counted in the same streaming pass with memory that does not grow with the corpus.
* Clear errors. Every problem the user can fix raises `CorpusError`. Its message names
  the file and, where it applies, the line.

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .chinese import CharacterSet, count_words
from .readers import (
    MAX_DOCUMENT_CHARS,
    CorpusError,
    Source,
    choose_encoding,
    file_errors,
    open_text,
    read_delimited,
    read_jsonl,
    paragraphs_from_lines,
    read_lines,
    cut_long,
    read_parquet,
)
from .cleaning import (
    DuplicateCounter,
    NearDuplicateFilter,
    bitmap_bits,
    drop_boilerplate,
    gutenberg_markers,
    strip_gutenberg,
)
from .staging import staged_dataset

__all__ = ["REMOVED_KEYS", "CorpusError", "CorpusStats", "ingest_corpus", "load_corpus", "long_documents_note",
           "preview_rows", "removed_note"]

TXT_MODES = ("lines", "paragraphs")
# The keys of CorpusStats.removed, in the order the corpus page lists them.
REMOVED_KEYS = ("exact_duplicates", "near_duplicates", "boilerplate_lines", "gutenberg_boilerplate")

# Below this many words, pretraining from scratch on a corpus is unlikely to give an encoder that fine-tunes better
# than random weights, and the corpus page says so before launch. Where the number comes from
# (bench/quality_per_hour.py, SST-2 as the downstream task): 1.06M words of Gutenberg did not beat random weights,
# and neither did 9.2M words seen in a 200 s budget; 5M is a conservative floor, not a guarantee above it.
SMALL_CORPUS_WORDS = 5_000_000

# Extension (after removing an optional .gz) -> reader kind.
_FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".raw": "txt",  # WikiText's wiki.*.raw files are plain text
    ".jsonl": "jsonl",
    ".json": "jsonl",  # accepted as JSON Lines; a single JSON array is rejected with a hint
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
_EXPECTED_TYPES = ".txt, .jsonl, .csv, .tsv, .parquet, optionally .gz"

# Documents are sent to Arrow in batches. A batch is flushed at whichever limit comes
# first, so memory stays bounded even when single documents are huge.
_BATCH_DOCS = 10_000
_BATCH_CHARS = 8 * 1024 * 1024

_FEATURES = datasets.Features({"text": datasets.Value("string")})
_DATA_FILE = "data-00000-of-00001.arrow"  # the name save_to_disk gives a one-shard dataset

# Histogram bins for document length in words. The edges grow by a factor of sqrt(2),
# rounded to whole words: 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, ... The edges
# are fixed, so the histogram can be filled while streaming. The finished histogram is
# trimmed to the bins that hold data, which is about 20 bins for a typical corpus.
_HIST_EDGES = sorted({round(2 ** (i / 2)) for i in range(64)})


@dataclass
class CorpusStats:
    """What was ingested. Counts refer to the documents that were kept (after de-duplication and the filters)."""

    documents: int
    characters: int
    words: int  # each CJK character is a word; other text is split at whitespace (see chinese.count_words)
    empty_lines: int  # blank/whitespace-only lines or records skipped
    duplicate_documents: int  # documents whose exact text occurred earlier (count of repeats; removed when dedupe)
    length_histogram: dict  # {"edges": [...], "counts": [...]}: document lengths in words
    encodings: dict  # {file_name: "utf-8" | "cp1252" | "latin-1" | ...}: the encoding used per file
    files: list[str]  # file names ingested
    # Added beyond the original spec: non-empty documents dropped because they were shorter
    # than `min_chars`. Without it, those documents would vanish from the numbers.
    short_documents: int = 0
    # Documents over MAX_DOCUMENT_CHARS (a file without line breaks, say), each cut at whitespace into
    # pieces of at most that size; the pieces count in `documents`.
    long_documents: int = 0
    # Character-level figures that matter for Chinese: CJK characters (BERT's Chinese ranges) among
    # `characters`, and how many different characters occur (letters, digits, punctuation, ideographs).
    cjk_characters: int = 0
    distinct_characters: int = 0
    # What each cleaning filter removed (issue 16): documents for the duplicate filters, non-blank lines for the
    # line filters. A filter that was off removed 0. `gutenberg_files`: files in which Gutenberg markers were found.
    removed: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(REMOVED_KEYS, 0))
    gutenberg_files: int = 0
    # The cleaning options the corpus was built with.
    cleaning: dict = dataclasses.field(default_factory=dict)

    @property
    def cjk_share(self) -> float:
        """Share of the characters that are CJK ideographs (0 for English, about 0.8 for Chinese prose)."""
        return self.cjk_characters / self.characters if self.characters else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "cjk_share": round(self.cjk_share, 6)}


# --------------------------------------------------------------------------- public API


def ingest_corpus(
    files: list[str | Path],
    dest_dir: str | Path,
    *,
    txt_mode: str = "lines",
    text_column: str | None = None,
    min_chars: int = 1,
    dedupe: bool = True,
    strip_gutenberg: bool = False,
    drop_boilerplate_lines: bool = False,
    near_duplicates: bool = False,
) -> CorpusStats:
    """Read the files, write ONE Arrow dataset (datasets.Dataset, single column "text") with save_to_disk at dest_dir, return stats.

    On any error this raises CorpusError and leaves nothing new at dest_dir. The dataset is
    written to a temporary sibling directory, which is renamed into place at the end and
    deleted on failure.

    `txt_mode` applies to .txt files. "lines" makes one document per non-empty line.
    "paragraphs" makes one document per blank-line-separated paragraph, with its lines
    joined by single spaces. `text_column` picks the field in .jsonl/.csv/.tsv/.parquet
    files. Documents are stripped of surrounding whitespace. Documents that end up empty are
    skipped and counted in `empty_lines`. Documents shorter than `min_chars` characters are
    skipped and counted in `short_documents`. Exact duplicates (the same text after stripping) are
    counted in `duplicate_documents` and, with `dedupe` (the default), removed: the first occurrence
    stays. Off by default: `strip_gutenberg` drops a Project Gutenberg header and licence from each .txt
    file before it is cut into documents; `drop_boilerplate_lines` drops .txt lines with fewer than 3
    letters or under 50% letters (in "paragraphs" mode before the lines are joined);
    `near_duplicates` drops documents whose word 5-shingles have an estimated Jaccard similarity of
    0.8 or more with an earlier document (MinHash LSH; its memory grows with the corpus). It catches
    exact duplicates too, which count as near-duplicates when `dedupe` is off. `stats.removed` counts
    what each filter removed (cleaning.py has the filters).
    A document over MAX_DOCUMENT_CHARS (1,000,000) characters is cut at whitespace into pieces of at
    most that size, read without ever holding it whole, and counted in `long_documents`.

    If `dest_dir` already holds a corpus (or is an empty directory), a successful ingest
    replaces it. A failed ingest leaves it untouched. Any other existing path is refused,
    so a typo cannot delete unrelated data.
    """
    _check_options(txt_mode, text_column, min_chars)
    cleaning = _Cleaning(*(_check_flag(name, value) for name, value in (
        ("dedupe", dedupe), ("strip_gutenberg", strip_gutenberg), ("drop_boilerplate_lines", drop_boilerplate_lines),
        ("near_duplicates", near_duplicates))))
    sources = _resolve_sources(files)
    dest = Path(dest_dir)
    _check_destination(dest)

    with staged_dataset(dest, CorpusError, "build the corpus") as work_dir:
        stats = _build_dataset(sources, work_dir, txt_mode, text_column, min_chars, cleaning)
    return stats


@dataclass(frozen=True)
class _Cleaning:
    """The cleaning options of one ingest (see ingest_corpus)."""

    dedupe: bool = True
    strip_gutenberg: bool = False
    drop_boilerplate_lines: bool = False
    near_duplicates: bool = False


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise CorpusError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def long_documents_note(count: int) -> str:
    """What the UI and the CLI add to a corpus summary when over-long documents were cut; "" when none were."""
    if not count:
        return ""
    return f" ({count:,} over-long documents cut into pieces of at most {MAX_DOCUMENT_CHARS:,} characters)"


def removed_note(removed: dict) -> str:
    """What the CLI adds to a corpus summary about the cleaning filters: "" when they removed nothing."""
    what = {"exact_duplicates": "exact duplicates", "near_duplicates": "near-duplicates",
            "boilerplate_lines": "boilerplate lines", "gutenberg_boilerplate": "Gutenberg header/licence lines"}
    parts = [f"{removed[key]:,} {label}" for key, label in what.items() if removed.get(key)]
    return f"; removed {', '.join(parts)}" if parts else ""


def load_corpus(dest_dir: str | Path) -> datasets.Dataset:
    """Open a corpus written by `ingest_corpus`. The data is memory-mapped, not loaded into RAM."""
    path = Path(dest_dir)
    if not (path / "state.json").is_file():
        raise CorpusError(f"{path}: no corpus here (run the ingest step first)")
    dataset = datasets.load_from_disk(str(path))
    if not isinstance(dataset, datasets.Dataset) or "text" not in dataset.column_names:
        raise CorpusError(f"{path}: not a corpus written by Pretrain Studio")
    return dataset


def preview_rows(dest_dir: str | Path, n: int = 10, max_chars: int | None = None) -> list[str]:
    """The first `n` documents of the corpus at `dest_dir`, each cut to its first `max_chars` characters.

    Only those rows are read from the memory-mapped file, and with `max_chars` they are cut in Arrow before
    they become Python strings: a document can be 1,000,000 characters, and a preview needs a few hundred.
    """
    if n <= 0:
        return []
    dataset = load_corpus(dest_dir)
    texts = dataset.with_format("arrow")[: min(n, len(dataset))]["text"]
    if max_chars is not None:
        texts = pc.utf8_slice_codeunits(texts, 0, max(max_chars, 0))
    return texts.to_pylist()


# ------------------------------------------------------------------ argument checking


def _check_options(txt_mode: str, text_column: str | None, min_chars: int) -> None:
    if txt_mode not in TXT_MODES:
        raise CorpusError(f"unknown txt_mode {txt_mode!r} (expected 'lines' or 'paragraphs')")
    if text_column is not None and not isinstance(text_column, str):
        raise CorpusError(f"text_column must be a column name, got {text_column!r}")
    if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 0:
        raise CorpusError(f"min_chars must be a whole number >= 0, got {min_chars!r}")


def _resolve_sources(files: Iterable[str | Path] | str | Path) -> list[Source]:
    """Check every file before reading any, so that a typo in file 5 fails in a second, not after file 4."""
    if isinstance(files, (str, Path)):  # one path, not a list: don't iterate its characters
        files = [files]
    paths = [Path(f) for f in (files or [])]
    if not paths:
        raise CorpusError("no files given: upload at least one corpus file")

    # Name files by their base name (upload paths are temporary and meaningless to the
    # user). Use the full path only when two files share a name, so stats keys stay unique.
    base_names = [p.name for p in paths]
    sources = []
    for path, base in zip(paths, base_names):
        name = base if base_names.count(base) == 1 else str(path)
        if not path.exists():
            raise CorpusError(key="error.file_not_found", file=name)
        if not path.is_file():
            raise CorpusError(f"{name}: not a regular file")
        kind, gzipped = _detect_format(name, base)
        sources.append(Source(path=path, name=name, kind=kind, gzipped=gzipped))
    return sources


def _detect_format(name: str, base: str) -> tuple[str, bool]:
    lower = base.lower()
    gzipped = lower.endswith(".gz")
    stem = lower[: -len(".gz")] if gzipped else lower
    ext = os.path.splitext(stem)[1]
    if ext not in _FORMATS:
        shown = ext or "(none)"
        raise CorpusError(key="error.unsupported_type", file=name, type=shown, expected=_EXPECTED_TYPES)
    return _FORMATS[ext], gzipped


def _check_destination(dest: Path) -> None:
    """Only an empty directory or an earlier corpus may be replaced."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise CorpusError(f"{dest}: exists and is not a directory")
    is_corpus = (dest / "state.json").is_file() and (dest / "dataset_info.json").is_file()
    if not is_corpus and any(dest.iterdir()):
        raise CorpusError(f"{dest}: directory is not empty and holds no corpus; refusing to overwrite it")


# --------------------------------------------------------------------------- building


def _build_dataset(
    sources: list[Source], work_dir: Path, txt_mode: str, text_column: str | None, min_chars: int,
    cleaning: _Cleaning = _Cleaning(),
) -> CorpusStats:
    """Stream every file into one Arrow file, in the layout of `save_to_disk`, at work_dir/dataset; then drop the
    duplicates from it (a second streaming pass, only when there are any or near-duplicates are looked for)."""
    dataset_dir = work_dir / "dataset"
    dataset_dir.mkdir()
    encodings: dict[str, str] = {}
    with _ArrowBatchWriter(dataset_dir / _DATA_FILE) as writer:
        collector = _Collector(writer, min_chars, work_dir / "digests", cleaning)
        for source in sources:
            before = (collector.documents, collector.empty, collector.short, collector.boilerplate,
                      collector.gutenberg)
            with file_errors(source):
                encodings[source.name] = _ingest_file(source, collector, work_dir, txt_mode, text_column)
            if collector.documents == before[0]:
                # Per file, not only overall: a file that yields nothing usually means a wrong
                # column or mode, and the user should hear about it, not get a smaller corpus.
                # (A file whose documents all repeat earlier ones is no error: they are removed later, and counted.)
                empty, short, boilerplate, gutenberg = (collector.empty - before[1], collector.short - before[2],
                                                        collector.boilerplate - before[3],
                                                        collector.gutenberg - before[4])
                detail = f"{empty} empty"
                if short:
                    detail += f", {short} shorter than min_chars={min_chars}"
                if boilerplate:
                    detail += f", {boilerplate} boilerplate lines dropped"
                if gutenberg:
                    detail += f", {gutenberg} lines of Project Gutenberg header and licence dropped"
                raise CorpusError(f"{source.name}: no documents found ({detail})")
    collector.remove_duplicates(dataset_dir / _DATA_FILE, work_dir)
    _write_dataset_metadata(dataset_dir)
    return collector.stats(files=[s.name for s in sources], encodings=encodings)


def _write_dataset_metadata(dataset_dir: Path) -> None:
    """The state.json and dataset_info.json that `save_to_disk` writes beside its Arrow file.

    The documents are already in that file (an Arrow IPC stream with the features in its schema, as
    save_to_disk writes it). Going through `Dataset.from_file(...).save_to_disk(...)` instead would
    copy the whole corpus once more, and reading it back through the memory map would count all of
    it in the process's resident memory. `load_corpus` (datasets.load_from_disk) opens the result.
    """
    datasets.DatasetInfo(features=_FEATURES).write_to_directory(str(dataset_dir), pretty_print=True)
    state = {
        "_data_files": [{"filename": _DATA_FILE}],
        "_fingerprint": uuid.uuid4().hex[:16],  # new content, so a new fingerprint (caches key on it)
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    (dataset_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")


def _ingest_file(
    source: Source, collector: _Collector, work_dir: Path, txt_mode: str, text_column: str | None
) -> str:
    """Feed one file's records to the collector and return the encoding that was used."""
    if source.kind == "parquet":
        for batch in read_parquet(source, text_column, work_dir):
            collector.offer_many(batch)
        return "utf-8"  # Parquet strings are UTF-8 by definition

    encoding = choose_encoding(source)
    # csv needs newline="" so that quoted fields keep their own line breaks. Everything else
    # uses universal newlines, which turn CRLF and lone CR into LF.
    newline = "" if source.kind in ("csv", "tsv") else None
    markers = None
    if source.kind == "txt" and collector.cleaning.strip_gutenberg:
        with open_text(source, encoding, None) as stream:  # a first pass: where the markers are, if anywhere
            markers = gutenberg_markers(read_lines(stream))
        collector.gutenberg_files += bool(markers)
    with open_text(source, encoding, newline) as stream:
        if source.kind == "txt":
            paragraphs = txt_mode == "paragraphs"
            # In "paragraphs" mode an over-long line is counted as the over-long paragraph it makes, not twice.
            lines = read_lines(stream) if paragraphs else read_lines(stream, collector.count_long)
            if markers is not None:
                lines = strip_gutenberg(lines, markers, collector.count_gutenberg)
            if collector.cleaning.drop_boilerplate_lines:
                lines = drop_boilerplate(lines, collector.count_boilerplate)
            records = paragraphs_from_lines(lines, collector.count_long) if paragraphs else lines
        elif source.kind == "jsonl":
            records = read_jsonl(stream, source.name, text_column or "text")
        else:
            records = read_delimited(stream, source.name, text_column, "\t" if source.kind == "tsv" else ",")
        for record in records:
            collector.offer(record)
    # "utf-8-sig" is only how the BOM gets stripped; for the user the encoding is UTF-8.
    return "utf-8" if encoding == "utf-8-sig" else encoding


class _ArrowBatchWriter:
    """Appends documents to an Arrow IPC stream file (the format `Dataset.from_file` reads), batch by batch."""

    def __init__(self, path: Path):
        self._schema = _FEATURES.arrow_schema  # carries the datasets feature metadata
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self._schema)
        self._pending: list[str] = []
        self._pending_chars = 0

    def add(self, text: str) -> None:
        self._pending.append(text)
        self._pending_chars += len(text)
        if len(self._pending) >= _BATCH_DOCS or self._pending_chars >= _BATCH_CHARS:
            self.flush()

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """Append a record batch of the same schema (one read back from such a file) as it is."""
        self.flush()
        if batch.num_rows:
            self._writer.write_batch(batch)

    def flush(self) -> None:
        if self._pending:
            column = pa.array(self._pending, type=pa.string())
            self._writer.write_batch(pa.record_batch([column], schema=self._schema))
            self._pending, self._pending_chars = [], 0

    def __enter__(self) -> _ArrowBatchWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.flush()
            self._writer.close()
        finally:
            self._sink.close()


class _Collector:
    """Cleans each record into a document, keeps the statistics and hands kept documents to the writer."""

    def __init__(self, writer: _ArrowBatchWriter, min_chars: int, digest_dir: Path, cleaning: _Cleaning = _Cleaning()):
        self._writer = writer
        self._min_chars = min_chars
        self.cleaning = cleaning
        self.documents = self.characters = self.words = self.cjk = 0
        self._characters = CharacterSet()
        self.empty = self.short = self.long = 0
        self.boilerplate = self.gutenberg = self.gutenberg_files = 0  # lines dropped, files with markers
        self.repeats = self.exact_removed = self.near_removed = 0  # set by remove_duplicates
        self._digests = DuplicateCounter(digest_dir)
        self._hist_counts = [0] * len(_HIST_EDGES)

    def count_long(self) -> None:
        """A reader cut an over-long document into pieces itself (to keep memory bounded)."""
        self.long += 1

    def count_boilerplate(self) -> None:
        self.boilerplate += 1

    def count_gutenberg(self) -> None:
        self.gutenberg += 1

    def offer(self, text: str | None) -> None:
        if text is not None and len(text) > MAX_DOCUMENT_CHARS:  # a CSV/JSON/Parquet cell; readers cut long lines
            self.count_long()
            pieces, rest = cut_long(text)
            for piece in (*pieces, rest):
                self._offer(piece)
        else:
            self._offer(text)

    def _offer(self, text: str | None) -> None:
        if text is None:  # a missing value (JSON null, Parquet null, short CSV row) counts as empty
            self.empty += 1
            return
        if "\r" in text:  # CSV/JSON fields can carry their own CRLF or CR; normalise to LF
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = text.strip()
        if not text:
            self.empty += 1
            return
        if len(text) < self._min_chars:
            self.short += 1
            return

        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates (possible via JSON "\ud800" escapes) cannot be stored as UTF-8.
            encoded = text.encode("utf-8", "replace")
            text = encoded.decode("utf-8")
        self._digests.add(hashlib.blake2b(encoded, digest_size=8).digest(), self.documents)  # row = documents so far

        n_words, n_cjk = count_words(text)
        self.documents += 1
        self.characters += len(text)
        self.words += n_words
        self.cjk += n_cjk
        self._characters.add(text)
        self._hist_counts[bisect_right(_HIST_EDGES, n_words) - 1] += 1
        self._writer.add(text)

    def offer_many(self, texts: Iterable[str | None]) -> None:
        for text in texts:
            self.offer(text)

    def remove_duplicates(self, data_file: Path, work_dir: Path) -> None:
        """Once every file is in `data_file`: drop the exact repeats (with `dedupe`) and the near-duplicates (with
        `near_duplicates`) from it, and take them out of the counts. One streaming pass over the Arrow file, batch
        by batch, into a new one; skipped when there is nothing to drop. The first occurrence always stays."""
        drop_bits, self.repeats = self._digests.repeat_rows(self.documents) if self.cleaning.dedupe \
            else (None, self._digests.repeats())
        near = NearDuplicateFilter() if self.cleaning.near_duplicates else None
        if drop_bits is None and near is None:
            return
        before = work_dir / "before-dedupe.arrow"
        data_file.rename(before)
        kept_characters = CharacterSet() if near is not None else None  # a near-duplicate may hold rare characters
        start = 0
        with pa.OSFile(str(before), "rb") as source, _ArrowBatchWriter(data_file) as writer:
            for batch in pa.ipc.open_stream(source):  # read, not memory-mapped: resident memory stays one batch
                n = batch.num_rows
                drop = np.zeros(n, dtype=bool)
                if drop_bits is not None:
                    drop = bitmap_bits(drop_bits, start, n)
                    self.exact_removed += int(drop.sum())
                if near is not None:
                    for i, text in enumerate(batch.column(0).to_pylist()):
                        if drop[i]:
                            continue
                        if near.is_repeat(text):
                            drop[i] = True
                            self.near_removed += 1
                        else:
                            kept_characters.add(text)
                if drop.any():
                    for text in batch.column(0).filter(pa.array(drop)).to_pylist():
                        self._forget(text)
                    batch = batch.filter(pa.array(~drop))
                writer.add_batch(batch)
                start += n
        before.unlink()
        if kept_characters is not None:
            self._characters = kept_characters

    def _forget(self, text: str) -> None:
        """Take a dropped document out of the counts that `_offer` added it to."""
        n_words, n_cjk = count_words(text)
        self.documents -= 1
        self.characters -= len(text)
        self.words -= n_words
        self.cjk -= n_cjk
        self._hist_counts[bisect_right(_HIST_EDGES, n_words) - 1] -= 1

    def stats(self, files: list[str], encodings: dict[str, str]) -> CorpusStats:
        return CorpusStats(
            documents=self.documents,
            characters=self.characters,
            words=self.words,
            empty_lines=self.empty,
            duplicate_documents=self.repeats,
            length_histogram=self._histogram(),
            encodings=dict(encodings),
            files=list(files),
            short_documents=self.short,
            long_documents=self.long,
            cjk_characters=self.cjk,
            distinct_characters=self._characters.distinct(),
            removed={"exact_duplicates": self.exact_removed, "near_duplicates": self.near_removed,
                     "boilerplate_lines": self.boilerplate, "gutenberg_boilerplate": self.gutenberg},
            gutenberg_files=self.gutenberg_files,
            cleaning=dataclasses.asdict(self.cleaning),
        )

    def _histogram(self) -> dict:
        """Bins [edges[i], edges[i+1]) in words, trimmed to the range that holds documents."""
        used = [i for i, count in enumerate(self._hist_counts) if count]
        if not used:
            return {"edges": [], "counts": []}
        lo, hi = used[0], used[-1]
        edges = _HIST_EDGES[lo : hi + 2]
        if len(edges) < hi - lo + 2:  # the top bin has no upper edge in the table: extend it
            edges.append(edges[-1] * 2)
        return {"edges": edges, "counts": self._hist_counts[lo : hi + 1]}

"""Reading labelled files into tables: format detection, CSV/TSV header sniffing, and one reader per
format (CSV/TSV, JSON Lines, Parquet, prefixed `<label> <text>` lines, and plain lines to classify).

Each file is read whole (or its first records, for previews) into a `Table`: named columns and
their records with the line (or Parquet row) each starts on, before any column is chosen. Opening,
gzip and choosing the encoding are the shared helpers of `readers.py`. Problems the user can fix
raise `DatasetError` naming the file and, where it applies, the line numbers. Also home to what
every labelled module shares (`DatasetError`, `MAX_CLASSES`, `FORMATS`, the usual column names,
`where`), so that `labelled.py` can import this module without a cycle.

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import UserError
from .readers import (
    CorpusError,
    Source,
    bounded_lines,
    choose_encoding,
    csv_records,
    file_errors,
    open_binary,
    open_text,
)

MAX_CLASSES = 100
FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "prefixed")
TEXT_NAMES = ("text", "sentence", "review", "content", "title")
LABEL_NAMES = ("label", "labels", "class", "category", "target")

_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_FASTTEXT = "__label__"
_SNIFF_CHARS = 65536  # the start of a CSV/TSV file that header detection looks at
_SHOWN_POSITIONS = 5  # line numbers named in one error message before "and N more"
_EXAMPLE = "example"  # what one line or record is called in messages about over-long lines


class DatasetError(UserError):
    """Bad labelled-data input; message names the file and, where it applies, the column and row numbers."""


@dataclass
class Table:
    """One file as read: named columns and its records, before any column is chosen."""

    name: str
    kind: str  # a format other than "auto", or "lines" (a file to classify: one text per line)
    columns: list[str]
    rows: list[dict]  # {column: cell}; cells are str, None, or (JSON/Parquet) other scalars
    positions: list[int]  # where each row starts: 1-based line, or row for Parquet
    has_header: bool | None  # None where the format has no header row (JSON Lines, Parquet, prefixed)
    encoding: str

    @property
    def unit(self) -> str:
        return "row" if self.kind == "parquet" else "line"


def where(unit: str, positions: list[int]) -> str:
    """"line 3", "lines 3, 5" or "lines 1, 2, 3, 4, 5 and 7 more"."""
    shown = ", ".join(str(p) for p in positions[:_SHOWN_POSITIONS])
    more = f" and {len(positions) - _SHOWN_POSITIONS} more" if len(positions) > _SHOWN_POSITIONS else ""
    return f"{unit}{'s' if len(positions) > 1 else ''} {shown}{more}"


# ---------------------------------------------------------------------------- reading


def resolve_sources(files: dict[str, str | Path | None]) -> dict[str, Source]:
    """Check every given file exists before reading any; name each by its base name (the full path if two share it)."""
    paths = {role: Path(f) for role, f in files.items() if f is not None and f != ""}
    if "train" in files and "train" not in paths:
        raise DatasetError("no train file given: upload a labelled file")
    base_names = [p.name for p in paths.values()]
    sources = {}
    for role, path in paths.items():
        name = path.name if base_names.count(path.name) == 1 else str(path)
        if not path.exists():
            raise DatasetError(key="error.file_not_found", file=name)
        if not path.is_file():
            raise DatasetError(f"{name}: not a regular file")
        gzipped = path.name.lower().endswith(".gz")
        sources[role] = Source(path=path, name=name, kind="auto", gzipped=gzipped)
    return sources


@contextmanager
def reading_errors(source: Source) -> Iterator[None]:
    """Low-level read errors (and the shared readers' CorpusErrors) become DatasetErrors naming the file."""
    try:
        with file_errors(source):
            yield
    except CorpusError as exc:
        raise DatasetError(str(exc), key=exc.key, **exc.params) from exc


def read_table(source: Source, file_format: str, has_header: bool | None, wanted: set[str],
               limit: int | None = None, plain_lines: bool = False) -> Table:
    """Read one file whole (or its first `limit` records) into a Table.

    `plain_lines` (for files to classify): a sniffed `<label> <text>` file whose first words do not
    look like labels is read as one text per line instead.
    """
    with reading_errors(source):
        kind, encoding = _detect_format(source, file_format)
        if kind == "prefixed" and plain_lines and file_format == "auto":
            table = _read_lines(source, encoding, limit)
            if not _first_words_are_labels(table):
                return table
        if kind == "parquet":
            table = _read_parquet(source, limit)
        elif kind == "jsonl":
            table = _read_jsonl(source, encoding, limit)
        elif kind == "prefixed":
            table = _read_prefixed(source, encoding, limit)
        else:
            table = _read_delimited(source, kind, encoding, has_header, wanted, limit)
    if not table.rows:
        raise DatasetError(f"{source.name}: no data rows")
    return table


def _detect_format(source: Source, file_format: str) -> tuple[str, str]:
    """The format to read the file as, and its text encoding ("utf-8" for Parquet)."""
    lower = source.path.name.lower()
    stem = lower[: -len(".gz")] if source.gzipped else lower
    kind = file_format if file_format != "auto" else _EXTENSIONS.get(os.path.splitext(stem)[1])
    if kind is None:
        with open_binary(source) as raw:
            if raw.read(4) == b"PAR1":  # Parquet's magic number, whatever the file is called
                kind = "parquet"
    if kind == "parquet":
        return kind, "utf-8"  # Parquet strings are UTF-8 by definition
    encoding = choose_encoding(source)  # also refuses empty and binary files
    if kind is None:
        first = ""
        with open_text(source, encoding, None) as stream:
            lines = bounded_lines(stream, source.name, _EXAMPLE)
            first = next((line.strip() for line in lines if line.strip()), "")
        if first.startswith(_FASTTEXT) or re.match(r"^\S+\s+\S", first):
            kind = "prefixed"
        else:
            raise DatasetError(
                f"{source.name}: could not recognise the file format; name the file .csv, .tsv, .jsonl or "
                f".parquet, or choose the format ({', '.join(FORMATS[1:])})"
            )
    # "utf-8-sig" is only how a byte-order mark gets stripped; for the user it is UTF-8.
    return kind, "utf-8" if encoding == "utf-8-sig" else encoding


class _HeaderSniffer(csv.Sniffer):
    """csv.Sniffer.has_header with the delimiter we already know, instead of a guessed dialect."""

    def __init__(self, delimiter: str):
        super().__init__()
        self._dialect = type("_Dialect", (csv.excel,), {"delimiter": delimiter})

    def sniff(self, sample, delimiters=None):  # the signature of csv.Sniffer.sniff
        return self._dialect


def _read_delimited(source: Source, kind: str, encoding: str, has_header: bool | None, wanted: set[str],
                    limit: int | None) -> Table:
    """CSV/TSV through the csv module, so quoted fields may hold delimiters and newlines."""
    delimiter = "\t" if kind == "tsv" else ","
    records: list[tuple[int, list[str]]] = []  # (first line of the record, fields)
    # newline="" keeps line breaks inside quoted fields; cell_text normalises their CRLF later.
    with open_text(source, encoding, newline="") as stream:
        for first_line, row in csv_records(bounded_lines(stream, source.name, _EXAMPLE), source.name, delimiter):
            if any(cell.strip() for cell in row):  # entirely blank lines and ",,," rows are skipped
                records.append((first_line, row))
                if limit is not None and len(records) > limit:
                    break
    if not records:
        raise DatasetError(f"{source.name}: no data rows")

    first = [cell.strip() for cell in records[0][1]]
    if has_header is None:
        with open_text(source, encoding, newline="") as stream:
            sample = stream.read(_SNIFF_CHARS)
        has_header = _looks_like_header(first, sample, delimiter, wanted, len(records))
    if has_header:
        columns = [cell or f"col{i}" for i, cell in enumerate(first, start=1)]
        columns = _unique(columns)
        records = records[1:]
    else:
        columns = [f"col{i}" for i in range(1, len(first) + 1)]

    ragged = [line for line, row in records if len(row) > len(columns)]
    if ragged:
        width = f"{len(columns)} in the {'header' if has_header else 'first row'}"
        raise DatasetError(
            f"{source.name}: {where('line', ragged)}: more fields than the {width}; check the delimiter and the quoting"
        )
    # Fewer fields than columns means missing values, as in pandas.
    rows = [{c: (row[i] if i < len(row) else None) for i, c in enumerate(columns)} for _, row in records]
    return Table(source.name, kind, columns, rows, [line for line, _ in records], has_header, encoding)


def _looks_like_header(first: list[str], sample: str, delimiter: str, wanted: set[str], n_records: int) -> bool:
    """A requested column name or a usual one (text, label, ...) in the first row makes it a header;
    else csv.Sniffer decides, given at least two rows to compare the first one with."""
    if wanted & set(first):
        return True
    if {cell.lower() for cell in first} & set(TEXT_NAMES + LABEL_NAMES):
        return True
    if n_records < 3:  # the Sniffer votes on a single data row, which any first row differs from
        return False
    try:
        return _HeaderSniffer(delimiter).has_header(sample)
    except csv.Error:
        return False


def _unique(columns: list[str]) -> list[str]:
    """Make repeated header names unique ("a", "a.1"), as pandas does, so no column hides another."""
    seen: Counter = Counter()
    out = []
    for column in columns:
        out.append(column if not seen[column] else f"{column}.{seen[column]}")
        seen[column] += 1
    return out


def _read_jsonl(source: Source, encoding: str, limit: int | None) -> Table:
    """One JSON object per line; the columns are every key seen, in order of first appearance."""
    rows, positions, malformed = [], [], []
    first_error = ""
    columns: dict[str, None] = {}
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(bounded_lines(stream, source.name, _EXAMPLE), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = exc.msg
            else:
                if isinstance(record, dict):
                    problem = ""
                else:
                    problem = "expected a JSON object, found " + ("an array" if isinstance(record, list) else "a value")
            if problem:
                if not malformed:
                    if line.lstrip().startswith("["):
                        problem += "; this looks like a JSON array, but one JSON object per line (JSON Lines) is expected"
                    first_error = f"line {line_no}: {problem}"
                malformed.append(line_no)
                continue
            columns.update(dict.fromkeys(record))
            rows.append(record)
            positions.append(line_no)
            if limit is not None and len(rows) >= limit:
                break
    if malformed:
        detail = first_error if len(malformed) > 1 else first_error.split(": ", 1)[1]
        raise DatasetError(f"{source.name}: malformed JSON on {where('line', malformed)} ({detail})")
    return Table(source.name, "jsonl", list(columns), rows, positions, None, encoding)


def _read_parquet(source: Source, limit: int | None) -> Table:
    # Parquet needs random access (the schema is in the footer); a gzipped file is small enough to unpack in memory.
    if source.gzipped:
        with open_binary(source) as raw:
            target = io.BytesIO(raw.read())
    else:
        target = source.path
    try:
        parquet = pq.ParquetFile(target)
        if limit is None:
            rows = parquet.read().to_pylist()
        else:
            batch = next(parquet.iter_batches(batch_size=limit), None)
            rows = batch.to_pylist() if batch is not None else []
        columns = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{source.name}: not a valid Parquet file ({exc})") from exc
    return Table(source.name, "parquet", columns, rows, list(range(1, len(rows) + 1)), None, "utf-8")


def _read_lines(source: Source, encoding: str, limit: int | None) -> Table:
    """One text per non-empty line, in a column "text" (files to classify only)."""
    rows, positions = [], []
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(bounded_lines(stream, source.name, _EXAMPLE), start=1):
            if line.strip():
                rows.append({"text": line})
                positions.append(line_no)
                if limit is not None and len(rows) >= limit:
                    break
    if not rows:
        raise DatasetError(f"{source.name}: no data rows")
    return Table(source.name, "lines", ["text"], rows, positions, None, encoding)


def _first_words_are_labels(table: Table) -> bool:
    """fastText prefixes, or at most MAX_CLASSES distinct first words of which hardly any (under 5% of the
    lines) occur only once: true of `<label> <text>` files, not of ordinary sentences."""
    parts = [row["text"].split(None, 1) for row in table.rows]
    if parts[0][0].startswith(_FASTTEXT):
        return True
    if any(len(p) < 2 for p in parts):
        return False
    counts = Counter(p[0] for p in parts)
    once = sum(1 for count in counts.values() if count == 1)
    return len(counts) <= MAX_CLASSES and once * 20 < len(parts)


def _read_prefixed(source: Source, encoding: str, limit: int | None) -> Table:
    """`<label> <text>` per line (label = up to the first whitespace), or fastText's `__label__<label> <text>`.

    The first non-empty line decides which: in a fastText file every line must carry the prefix.
    More than one `__label__` on a line (multi-label) is refused.
    """
    rows, positions = [], []
    unprefixed, multi, no_text = [], [], []
    fasttext: bool | None = None
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(bounded_lines(stream, source.name, _EXAMPLE), start=1):
            line = line.strip()
            if not line:
                continue
            if fasttext is None:
                fasttext = line.startswith(_FASTTEXT)
            parts = line.split(None, 1)
            label, text = parts[0], (parts[1] if len(parts) > 1 else "")
            if fasttext:
                if not label.startswith(_FASTTEXT):
                    unprefixed.append(line_no)
                    continue
                label = label[len(_FASTTEXT):]
                if text.startswith(_FASTTEXT):
                    multi.append(line_no)
                    continue
            if not text:
                no_text.append(line_no)
                continue
            rows.append({"label": label, "text": text})
            positions.append(line_no)
            if limit is not None and len(rows) >= limit:
                break
    if multi:
        raise DatasetError(
            f"{source.name}: more than one {_FASTTEXT} on {where('line', multi)}; multi-label data is not supported"
        )
    if unprefixed:
        raise DatasetError(f"{source.name}: no {_FASTTEXT} prefix on {where('line', unprefixed)}")
    if no_text:
        raise DatasetError(f"{source.name}: a label but no text on {where('line', no_text)}")
    return Table(source.name, "prefixed", ["label", "text"], rows, positions, None, encoding)

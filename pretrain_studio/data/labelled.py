"""Labelled data ingestion: turn the user's text-classification files into a `datasets.DatasetDict`
for fine-tuning, with train/validation(/test) splits, and report statistics for the UI.

`ingest_labelled` reads CSV, TSV, JSON Lines, Parquet and "prefixed" text files (one example per
line, `<label> <text>` or fastText's `__label__<label> <text>`), checks every row, splits off
validation (and test) data when no such files are given, and saves the result with `save_to_disk`.
`load_labelled` opens it again; `inspect_columns` previews a file for the UI's column pickers;
`read_prediction_rows` reads a file of texts (with or without labels) to classify.

Design points:

* In memory. Labelled sets are small (thousands to a few hundred thousand rows), so each file is
  read whole into Python lists. All reading and checking happens before anything is written.
* Honest decoding. UTF-8, then cp1252, then Latin-1 (via `readers.choose_encoding`); the encoding
  chosen for each file is reported. CRLF and lone CR become LF.
* Predictable columns. Headerless CSV/TSV columns are named `col1`, `col2`, ...; prefixed files have
  the columns "label" and "text". Without an explicit choice the text column is the first of
  "text", "sentence", "review", "content", "title" and the label column the first of "label",
  "labels", "class", "category", "target" (names compared case-insensitively). If that finds
  nothing: with one column chosen and one other left, the other is taken; with exactly two columns
  and nothing chosen, the one whose values look like labels (no spaces, at most `max_classes`
  distinct values) is the label, if exactly one does. Otherwise a `DatasetError` lists the columns.
* Strict rows. Empty labels, empty texts, ragged rows, malformed lines, a single class, too many
  classes, or a validation/test label never seen in train raise `DatasetError`, naming the file,
  the column and the line numbers (1-based lines of the file; 1-based rows for Parquet). Rows are
  never dropped silently: the user should know. Only entirely blank lines/records are skipped.
* All or nothing. The dataset is built in a temporary sibling of `dest_dir` and renamed into place
  at the end; on any error nothing new is left at `dest_dir`.

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .readers import (
    CorpusError,
    Source,
    choose_encoding,
    file_errors,
    open_binary,
    open_text,
)

__all__ = [
    "FORMATS",
    "MAX_CLASSES",
    "DatasetError",
    "LabelledStats",
    "ingest_labelled",
    "inspect_columns",
    "load_labelled",
    "read_prediction_rows",
]

MAX_CLASSES = 100
FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "prefixed")

_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_TEXT_NAMES = ("text", "sentence", "review", "content", "title")
_LABEL_NAMES = ("label", "labels", "class", "category", "target")
_FASTTEXT = "__label__"
_SPLITS = ("train", "validation", "test")
_SNIFF_CHARS = 65536  # the start of a CSV/TSV file that header detection looks at
_PREVIEW_ROWS = 5  # rows inspect_columns returns
_SHOWN_POSITIONS = 5  # line numbers named in one error message before "and N more"
_EXAMPLES = 10  # train rows and cross-split duplicates shown in the stats
_LABEL_MAX_CHARS = 64  # longer values do not look like labels when guessing the label column


class DatasetError(ValueError):
    """Bad labelled-data input; message names the file and, where it applies, the column and row numbers."""


@dataclass
class LabelledStats:
    """What was ingested. Splits are "train", "validation" and, if given or made, "test"."""

    labels: list[str]  # label names, sorted (numerically when all look like integers, else naturally)
    counts: dict[str, dict[str, int]]  # {split: {label: count}}, every label in every split
    splits: dict[str, int]  # {split: rows}
    imbalance: float  # largest / smallest class count in train (classes with 0 train rows ignored)
    cross_split_duplicates: dict[str, int]  # {"train/validation": n, ...}: distinct texts in both splits
    duplicate_examples: list[dict]  # up to 10 {"text", ("text_pair"), "splits"} for the above
    examples: list[dict]  # first train rows {"text", ("text_pair"), "label"}
    text_pair: bool  # whether a second text column is used
    columns: dict  # {"text": name, "text_pair": name | None, "label": name}
    files: dict[str, str]  # {split: file name}; a split made from train names the train file
    encodings: dict[str, str]  # {file name: encoding}
    split_made: bool  # True when validation (and test) were split off train, stratified by label

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class _Table:
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


@dataclass
class _Split:
    """The checked examples of one split."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[str]

    def subset(self, indices: list[int]) -> _Split:
        pairs = None if self.pairs is None else [self.pairs[i] for i in indices]
        return _Split([self.texts[i] for i in indices], pairs, [self.labels[i] for i in indices])


# -------------------------------------------------------------------------- public API


def inspect_columns(file: str | Path, file_format: str = "auto", has_header: bool | None = None) -> dict:
    """Cheap preview for the UI's column pickers: {"format", "columns": [...], "has_header", "rows": first 5 rows as dicts}.

    Also returned: "encoding", and "guess": {"text", "label", "text_pair"}, the columns
    `ingest_labelled` would choose by default (None where it could not choose; "text_pair" is
    always None: a second text is only used when asked for). "has_header" is None for formats
    without a header row (JSON Lines, Parquet, prefixed).
    """
    _check_format_options(file_format, has_header)
    if file is None or file == "":
        raise DatasetError("no file given: upload a labelled file")
    (source,) = _resolve_sources({"file": file}).values()
    table = _read_table(source, file_format, has_header, wanted=set(), limit=_PREVIEW_ROWS)
    try:
        text, label, _ = _resolve_columns(table, None, None, None, MAX_CLASSES)
    except DatasetError:
        text = label = None
    return {
        "format": table.kind,
        "columns": list(table.columns),
        "has_header": table.has_header,
        "rows": [{c: _preview_cell(row.get(c)) for c in table.columns} for row in table.rows[:_PREVIEW_ROWS]],
        "encoding": table.encoding,
        "guess": {"text": text, "label": label, "text_pair": None},
    }


def ingest_labelled(
    train_file: str | Path,
    dest_dir: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    text_pair_column: str | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    file_format: str = "auto",
    has_header: bool | None = None,
    seed: int = 42,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_classes: int = MAX_CLASSES,
) -> LabelledStats:
    """Read, validate, split if needed, save at dest_dir (all or nothing: build in a temp sibling, rename at the end; nothing left on error).

    `file_format` and `has_header` apply to every file; with "auto" / None each file is detected on
    its own: .csv, .tsv, .jsonl/.json, .parquet (text formats optionally .gz), anything else is
    sniffed as prefixed text. The columns are chosen on the train file (see the module docstring)
    and must exist under the same names in the validation and test files.

    Splits: given files are used as they are. Without `validation_file`, `validation_fraction` of
    the train file becomes the validation split; without `test_file` as well and with
    `test_fraction` > 0, `test_fraction` of it becomes the test split (fractions of all the rows of
    the train file). Both are stratified by label, deterministic for a `seed`, and keep the file
    order within each split. A class with a single row stays in train; when the rest still cannot
    be stratified (fewer rows in a split than classes), the split is plain random.

    Stats count cross-split duplicates (distinct stripped texts, or text pairs, found in two
    splits) for each pair of splits present: "train/validation", and with a test split also
    "train/test" and "validation/test".

    If `dest_dir` already holds a labelled dataset (or is an empty directory), a successful ingest
    replaces it; any other existing path is refused.
    """
    _check_format_options(file_format, has_header)
    _check_split_options(seed, validation_fraction, test_fraction, max_classes, validation_file, test_file)
    for role, column in (("text_column", text_column), ("label_column", label_column),
                         ("text_pair_column", text_pair_column)):
        if column is not None and (not isinstance(column, str) or not column.strip()):
            raise DatasetError(f"{role} must be a column name, got {column!r}")
    sources = _resolve_sources({"train": train_file, "validation": validation_file, "test": test_file})
    dest = Path(dest_dir)
    _check_destination(dest)

    # --- read and check every file before writing anything
    requested = {c.strip() for c in (text_column, label_column, text_pair_column) if c}
    train_table = _read_table(sources["train"], file_format, has_header, requested)
    text, label, pair = _resolve_columns(
        train_table, _strip(text_column), _strip(label_column), _strip(text_pair_column), max_classes
    )
    tables = {"train": train_table}
    for role in ("validation", "test"):
        if role in sources:
            wanted = {c for c in (text, label, pair) if c}
            tables[role] = _read_table(sources[role], file_format, has_header, wanted)
            _require_columns(tables[role], text, label, pair, train_table)
    data = {role: _collect_rows(table, text, label, pair) for role, table in tables.items()}
    labels = _check_classes(train_table, label, data["train"].labels, max_classes)
    for role in ("validation", "test"):
        if role in data:
            _check_known_labels(tables[role], label, data[role].labels, set(labels), train_table.name)

    # --- split off validation/test when they were not given
    split_made = "validation" not in data
    if split_made:
        make_test = "test" not in data and test_fraction > 0
        data.update(_split_train(data["train"], train_table.name, seed, validation_fraction,
                                 test_fraction if make_test else 0.0))
    files = {role: sources.get(role, sources["train"]).name for role in _SPLITS if role in data}
    data = {role: data[role] for role in _SPLITS if role in data}

    stats = _make_stats(data, labels, text, label, pair, files,
                        {t.name: t.encoding for t in tables.values()}, split_made)

    # --- build in a temporary sibling of dest, then rename into place
    work_dir: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A sibling of dest, so the final rename stays on one filesystem and is atomic.
        work_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        _to_dataset_dict(data, labels).save_to_disk(str(work_dir / "dataset"))
        _publish(work_dir / "dataset", dest)
        return stats
    except DatasetError:
        raise
    except Exception as exc:  # disk full, permissions...: still report it as a dataset error
        raise DatasetError(f"could not save the labelled dataset at {dest}: {exc}") from exc
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)


def load_labelled(dest_dir: str | Path) -> datasets.DatasetDict:
    """Columns: "text", optional "text_pair", "label" (a datasets.ClassLabel whose names are the label names, same order in every split)."""
    path = Path(dest_dir)
    if not (path / "dataset_dict.json").is_file():
        raise DatasetError(f"{path}: no labelled dataset here (run the ingest step first)")
    dataset = datasets.load_from_disk(str(path))
    if (
        not isinstance(dataset, datasets.DatasetDict)
        or not {"train", "validation"} <= set(dataset)
        or not isinstance(dataset["train"].features.get("label"), datasets.ClassLabel)
    ):
        raise DatasetError(f"{path}: not a labelled dataset written by Pretrain Studio")
    return dataset


def read_prediction_rows(
    file: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    text_pair_column: str | None = None,
    file_format: str = "auto",
    has_header: bool | None = None,
    max_rows: int | None = None,
) -> tuple[list[str], list[str] | None, list[str] | None]:
    """The (texts, text pairs or None, gold labels or None) of a file to classify.

    Same formats and decoding as `ingest_labelled`. The text column is the requested one, else the
    usual names ("text", "sentence", ...), else the only column. The label column is optional:
    the requested one, else a column with a usual label name if there is one; without it, gold is
    None. The pair column is the requested one, else a column named "text_pair" if present.
    A text file that is not fastText-style is read as `<label> <text>` lines only when a label
    column is asked for or its first words clearly look like labels (at most MAX_CLASSES distinct
    ones, hardly any used only once); otherwise every line is one text.
    Empty texts or labels, and more than `max_rows` rows, raise `DatasetError`.
    """
    _check_format_options(file_format, has_header)
    if file is None or file == "":
        raise DatasetError("no file given: upload a file of texts")
    (source,) = _resolve_sources({"file": file}).values()
    requested = {c.strip() for c in (text_column, label_column, text_pair_column) if c}
    limit = None if max_rows is None else max_rows + 1
    table = _read_table(source, file_format, has_header, requested, limit, plain_lines=label_column is None)
    if max_rows is not None and len(table.rows) > max_rows:
        raise DatasetError(f"{table.name}: more than {max_rows:,} rows; split the file into smaller ones")

    text, label, pair = _strip(text_column), _strip(label_column), _strip(text_pair_column)
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(f"{table.name}: no {role} column {column!r}; {_available(table)}{_header_hint(table)}")
    if label is None:
        label = _usual_column(table.columns, _LABEL_NAMES, {text, pair})
    if text is None:
        rest = [c for c in table.columns if c not in {label, pair}]
        text = _usual_column(rest, _TEXT_NAMES, set()) or (rest[0] if len(rest) == 1 else None)
        if text is None:
            raise DatasetError(f"{table.name}: cannot tell which column holds the text; choose from the {_available(table)}")
    if pair is None and "text_pair" in table.columns and "text_pair" not in {text, label}:
        pair = "text_pair"

    columns = [c for c in (text, pair, label) if c is not None]
    values: dict[str, list[str]] = {c: [] for c in columns}
    empty: dict[str, list[int]] = {c: [] for c in columns}
    for row, position in zip(table.rows, table.positions):
        for column in columns:
            value = _cell_text(table, column, row.get(column), position)
            if value is None:
                empty[column].append(position)
            values[column].append(value)
    for column, kind in ((text, "text"), (pair, "text pair"), (label, "label")):
        if column is not None and empty[column]:
            hint = "; leave the label column out to predict without scoring" if column == label else ""
            raise DatasetError(
                f"{table.name}: column {column!r}: empty or missing {kind} on {_where(table.unit, empty[column])}{hint}"
            )
    return values[text], (values[pair] if pair else None), (values[label] if label else None)


# ------------------------------------------------------------------ argument checking


def _check_format_options(file_format: str, has_header: bool | None) -> None:
    if file_format not in FORMATS:
        raise DatasetError(f"unknown file_format {file_format!r} (expected one of {', '.join(FORMATS)})")
    if has_header is not None and not isinstance(has_header, bool):
        raise DatasetError(f"has_header must be True, False or None (detect), got {has_header!r}")


def _check_split_options(seed, validation_fraction, test_fraction, max_classes, validation_file, test_file) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a whole number >= 0, got {seed!r}")
    if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 2:
        raise DatasetError(f"max_classes must be a whole number >= 2, got {max_classes!r}")
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise DatasetError(f"{name} must be a number from 0 to below 1, got {value!r}")
    if validation_file is None:
        if validation_fraction <= 0:
            raise DatasetError("validation_fraction must be above 0 when no validation file is given")
        if test_file is None and validation_fraction + test_fraction >= 1:
            raise DatasetError(
                f"validation_fraction + test_fraction must be below 1, got {validation_fraction + test_fraction:g}"
            )


def _resolve_sources(files: dict[str, str | Path | None]) -> dict[str, Source]:
    """Check every given file exists before reading any; name each by its base name (the full path if two share it)."""
    paths = {role: Path(f) for role, f in files.items() if f is not None and f != ""}
    if "train" in files and "train" not in paths:
        raise DatasetError("no train file given: upload a labelled file")
    base_names = [p.name for p in paths.values()]
    sources = {}
    for role, path in paths.items():
        name = path.name if base_names.count(path.name) == 1 else str(path)
        if not path.exists():
            raise DatasetError(f"{name}: file not found")
        if not path.is_file():
            raise DatasetError(f"{name}: not a regular file")
        gzipped = path.name.lower().endswith(".gz")
        sources[role] = Source(path=path, name=name, kind="auto", gzipped=gzipped)
    return sources


def _check_destination(dest: Path) -> None:
    """Only an empty directory or an earlier labelled dataset may be replaced."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise DatasetError(f"{dest}: exists and is not a directory")
    if not (dest / "dataset_dict.json").is_file() and any(dest.iterdir()):
        raise DatasetError(f"{dest}: directory is not empty and holds no labelled dataset; refusing to overwrite it")


def _strip(column: str | None) -> str | None:
    return column.strip() if column else None


# ---------------------------------------------------------------------------- reading


@contextmanager
def _reading(source: Source) -> Iterator[None]:
    """Low-level read errors (and the shared readers' CorpusErrors) become DatasetErrors naming the file."""
    try:
        with file_errors(source):
            yield
    except CorpusError as exc:
        raise DatasetError(str(exc)) from exc


def _read_table(source: Source, file_format: str, has_header: bool | None, wanted: set[str],
                limit: int | None = None, plain_lines: bool = False) -> _Table:
    """Read one file whole (or its first `limit` records) into a _Table.

    `plain_lines` (for files to classify): a sniffed `<label> <text>` file whose first words do not
    look like labels is read as one text per line instead.
    """
    with _reading(source):
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
            first = next((line.strip() for line in stream if line.strip()), "")
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
                    limit: int | None) -> _Table:
    """CSV/TSV through the csv module, so quoted fields may hold delimiters and newlines."""
    delimiter = "\t" if kind == "tsv" else ","
    # The default limit (128 KiB per field) is too small for documents stored in a cell.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    records: list[tuple[int, list[str]]] = []  # (first line of the record, fields)
    # newline="" keeps line breaks inside quoted fields; _cell_text normalises their CRLF later.
    with open_text(source, encoding, newline="") as stream:
        reader = csv.reader(stream, delimiter=delimiter)
        start = 1
        try:
            for row in reader:
                first_line, start = start, reader.line_num + 1
                if any(cell.strip() for cell in row):  # entirely blank lines and ",,," rows are skipped
                    records.append((first_line, row))
                    if limit is not None and len(records) > limit:
                        break
        except csv.Error as exc:
            raise DatasetError(f"{source.name}: line {start}: {exc}") from exc
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
            f"{source.name}: {_where('line', ragged)}: more fields than the {width}; check the delimiter and the quoting"
        )
    # Fewer fields than columns means missing values, as in pandas.
    rows = [{c: (row[i] if i < len(row) else None) for i, c in enumerate(columns)} for _, row in records]
    return _Table(source.name, kind, columns, rows, [line for line, _ in records], has_header, encoding)


def _looks_like_header(first: list[str], sample: str, delimiter: str, wanted: set[str], n_records: int) -> bool:
    """A requested column name or a usual one (text, label, ...) in the first row makes it a header;
    else csv.Sniffer decides, given at least two rows to compare the first one with."""
    if wanted & set(first):
        return True
    if {cell.lower() for cell in first} & set(_TEXT_NAMES + _LABEL_NAMES):
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


def _read_jsonl(source: Source, encoding: str, limit: int | None) -> _Table:
    """One JSON object per line; the columns are every key seen, in order of first appearance."""
    rows, positions, malformed = [], [], []
    first_error = ""
    columns: dict[str, None] = {}
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(stream, start=1):
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
        raise DatasetError(f"{source.name}: malformed JSON on {_where('line', malformed)} ({detail})")
    return _Table(source.name, "jsonl", list(columns), rows, positions, None, encoding)


def _read_parquet(source: Source, limit: int | None) -> _Table:
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
    return _Table(source.name, "parquet", columns, rows, list(range(1, len(rows) + 1)), None, "utf-8")


def _read_lines(source: Source, encoding: str, limit: int | None) -> _Table:
    """One text per non-empty line, in a column "text" (files to classify only)."""
    rows, positions = [], []
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(stream, start=1):
            if line.strip():
                rows.append({"text": line})
                positions.append(line_no)
                if limit is not None and len(rows) >= limit:
                    break
    if not rows:
        raise DatasetError(f"{source.name}: no data rows")
    return _Table(source.name, "lines", ["text"], rows, positions, None, encoding)


def _first_words_are_labels(table: _Table) -> bool:
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


def _read_prefixed(source: Source, encoding: str, limit: int | None) -> _Table:
    """`<label> <text>` per line (label = up to the first whitespace), or fastText's `__label__<label> <text>`.

    The first non-empty line decides which: in a fastText file every line must carry the prefix.
    More than one `__label__` on a line (multi-label) is refused.
    """
    rows, positions = [], []
    unprefixed, multi, no_text = [], [], []
    fasttext: bool | None = None
    with open_text(source, encoding, newline=None) as stream:
        for line_no, line in enumerate(stream, start=1):
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
            f"{source.name}: more than one {_FASTTEXT} on {_where('line', multi)}; multi-label data is not supported"
        )
    if unprefixed:
        raise DatasetError(f"{source.name}: no {_FASTTEXT} prefix on {_where('line', unprefixed)}")
    if no_text:
        raise DatasetError(f"{source.name}: a label but no text on {_where('line', no_text)}")
    return _Table(source.name, "prefixed", ["label", "text"], rows, positions, None, encoding)


# ---------------------------------------------------------------------------- columns


def _resolve_columns(table: _Table, text: str | None, label: str | None, pair: str | None,
                     max_classes: int) -> tuple[str, str, str | None]:
    """The (text, label, text_pair) column names: the requested ones, else the defaults (module docstring)."""
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(f"{table.name}: no {role} column {column!r}; {_available(table)}{_header_hint(table)}")
    if text is None:
        text = _usual_column(table.columns, _TEXT_NAMES, {label, pair})
    if label is None:
        label = _usual_column(table.columns, _LABEL_NAMES, {text, pair})
    rest = [c for c in table.columns if c not in {text, label, pair}]
    if text is None and label is not None and len(rest) == 1:
        text = rest[0]
    elif label is None and text is not None and len(rest) == 1:
        label = rest[0]
    elif text is None and label is None and len(rest) == 2:
        label_like = [c for c in rest if _looks_like_labels(table, c, max_classes)]
        if len(label_like) == 1:
            label = label_like[0]
            text = next(c for c in rest if c != label)
    if text is None or label is None:
        missing = " and ".join(role for role, c in (("text", text), ("label", label)) if c is None)
        raise DatasetError(f"{table.name}: cannot tell which column holds the {missing}; choose from the {_available(table)}")
    chosen = [c for c in (text, label, pair) if c is not None]
    if len(set(chosen)) < len(chosen):
        raise DatasetError(f"{table.name}: the text, label and text pair columns must differ (got {chosen})")
    return text, label, pair


def _usual_column(columns: list[str], names: tuple[str, ...], taken: set) -> str | None:
    by_lower = {}
    for column in columns:
        by_lower.setdefault(column.lower(), column)
    return next((by_lower[n] for n in names if n in by_lower and by_lower[n] not in taken), None)


def _looks_like_labels(table: _Table, column: str, max_classes: int) -> bool:
    values = {str(v).strip() for row in table.rows if (v := row.get(column)) is not None and str(v).strip()}
    return bool(values) and len(values) <= max_classes and all(
        len(v) <= _LABEL_MAX_CHARS and not any(ch.isspace() for ch in v) for v in values
    )


def _require_columns(table: _Table, text: str, label: str, pair: str | None, train: _Table) -> None:
    """Validation/test files must have the train file's chosen columns under the same names."""
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(
                f"{table.name}: no {role} column {column!r} (the column used in {train.name}); "
                f"{_available(table)}{_header_hint(table)}"
            )


def _available(table: _Table) -> str:
    return "available columns: " + ", ".join(repr(c) for c in table.columns)


def _header_hint(table: _Table) -> str:
    if table.has_header is False:
        return "; the file was read without a header row (columns col1, col2, ...): set has_header if it has one"
    if table.has_header:
        return "; the first row was read as the header: unset has_header if the file has none"
    return ""


# ----------------------------------------------------------------------- row checking


def _collect_rows(table: _Table, text: str, label: str, pair: str | None) -> _Split:
    """The cleaned text/pair/label of every row; empty or unusable cells raise naming their lines."""
    texts, pairs, labels = [], [] if pair else None, []
    empty: dict[str, list[int]] = {text: [], label: [], **({pair: []} if pair else {})}
    for row, position in zip(table.rows, table.positions):
        cleaned = {}
        for column, empty_positions in empty.items():
            value = _cell_text(table, column, row.get(column), position)
            if value is None:
                empty_positions.append(position)
            cleaned[column] = value
        texts.append(cleaned[text])
        labels.append(cleaned[label])
        if pairs is not None:
            pairs.append(cleaned[pair])
    for column, kind in ((label, "label"), (text, "text"), (pair, "text pair")):
        if column and empty[column]:
            raise DatasetError(
                f"{table.name}: column {column!r}: empty or missing {kind} on {_where(table.unit, empty[column])}"
            )
    return _Split(texts, pairs, labels)


def _cell_text(table: _Table, column: str, value, position: int) -> str | None:
    """A cell as stripped text with LF line ends; None when missing or empty. Numbers become their digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        value = str(value).lower()  # JSON spelling
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))  # 1.0 -> "1", as a label should read
    elif isinstance(value, (int, float)):
        value = str(value)
    elif not isinstance(value, str):
        raise DatasetError(
            f"{table.name}: column {column!r}, {table.unit} {position}: holds {type(value).__name__}, "
            "expected text or a number"
        )
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.strip() or None


def _check_classes(table: _Table, column: str, labels: list[str], max_classes: int) -> list[str]:
    """The sorted label names of train; refuse one class or more than max_classes."""
    names = _sort_labels(set(labels))
    if len(names) > max_classes:
        raise DatasetError(
            f"{table.name}: column {column!r} has {len(names)} classes, more than the limit of {max_classes} "
            f"(max_classes); is {column!r} really the label column?"
        )
    if len(names) < 2:
        raise DatasetError(
            f"{table.name}: column {column!r} has a single class ({names[0]!r}); a classifier needs at least two"
        )
    return names


def _check_known_labels(table: _Table, column: str, labels: list[str], known: set[str], train_name: str) -> None:
    """A validation/test label that train never has cannot be predicted; name it and its lines."""
    unknown: dict[str, list[int]] = {}
    for value, position in zip(labels, table.positions):
        if value not in known:
            unknown.setdefault(value, []).append(position)
    if unknown:
        shown = "; ".join(f"{name!r} on {_where(table.unit, lines)}" for name, lines in list(unknown.items())[:5])
        more = f"; and {len(unknown) - 5} more labels" if len(unknown) > 5 else ""
        raise DatasetError(
            f"{table.name}: column {column!r}: labels that never occur in the train file {train_name}: {shown}{more}"
        )


def _sort_labels(names: set[str]) -> list[str]:
    """Numerically when every label is an integer ("2" before "10"), else naturally ("c2" before "c10")."""
    if all(re.fullmatch(r"[+-]?\d+", n) for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names, key=lambda n: ([(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", n)], n))


def _where(unit: str, positions: list[int]) -> str:
    """"line 3", "lines 3, 5" or "lines 1, 2, 3, 4, 5 and 7 more"."""
    shown = ", ".join(str(p) for p in positions[:_SHOWN_POSITIONS])
    more = f" and {len(positions) - _SHOWN_POSITIONS} more" if len(positions) > _SHOWN_POSITIONS else ""
    return f"{unit}{'s' if len(positions) > 1 else ''} {shown}{more}"


def _preview_cell(value):
    if isinstance(value, str) and "\r" in value:
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value


# ------------------------------------------------------------------------- splitting


def _split_train(train: _Split, name: str, seed: int, validation_fraction: float,
                 test_fraction: float) -> dict[str, _Split]:
    """Stratified train/validation(/test) split; each split keeps the file order."""
    total = len(train.labels)
    rest = list(range(total))
    out = {}
    # Sizes as row counts of the whole file, so validation is validation_fraction of all rows,
    # not of what the test split left (and rounding cannot make one split a row bigger).
    if test_fraction > 0:
        rest, test = _split_indices(rest, train.labels, max(1, round(test_fraction * total)), seed, name, "test")
        out["test"] = train.subset(test)
    size = max(1, round(validation_fraction * total))
    rest, validation = _split_indices(rest, train.labels, size, seed, name, "validation")
    out["validation"] = train.subset(validation)
    out["train"] = train.subset(rest)
    if len(set(out["train"].labels)) < 2:  # possible after the unstratified fallback on a tiny file
        raise DatasetError(f"{name}: too few rows ({total}) to split off validation/test sets and keep two "
                           "classes in train; give more rows or a validation file")
    return out


def _split_indices(indices: list[int], labels: list[str], size: int, seed: int, name: str,
                   role: str) -> tuple[list[int], list[int]]:
    """`size` of `indices` split off, stratified by label where possible; both parts sorted (file order)."""
    # Imported here: sklearn is slow to import and only needed when a split is made.
    from sklearn.model_selection import train_test_split

    # A class with a single row stays in train: it cannot be stratified, and in an evaluation
    # split it would be a class the model never saw. The other rows are split.
    counts = Counter(labels[i] for i in indices)
    singles = [i for i in indices if counts[labels[i]] == 1]
    rest = [i for i in indices if counts[labels[i]] > 1]
    try:
        kept, split = train_test_split(rest, test_size=size, stratify=[labels[i] for i in rest], random_state=seed)
    except ValueError:
        # Still not stratifiable (the split has fewer rows than there are classes, say):
        # a plain random split is the sensible fallback.
        try:
            kept, split = train_test_split(rest, test_size=size, random_state=seed)
        except ValueError as exc:
            raise DatasetError(
                f"{name}: too few rows to split off a {role} set ({len(indices)} rows left to split); "
                f"give more rows or a {role} file"
            ) from exc
    return sorted(kept + singles), sorted(split)


# ------------------------------------------------------------------ stats and saving


def _make_stats(data: dict[str, _Split], labels: list[str], text: str, label: str, pair: str | None,
                files: dict[str, str], encodings: dict[str, str], split_made: bool) -> LabelledStats:
    counts = {}
    for role, split in data.items():
        counter = Counter(split.labels)
        counts[role] = {name: counter.get(name, 0) for name in labels}
    present = [c for c in counts["train"].values() if c]
    duplicates, duplicate_examples = _cross_split_duplicates(data)
    train = data["train"]
    examples = []
    for i in range(min(_EXAMPLES, len(train.texts))):
        example = {"text": train.texts[i]}
        if train.pairs is not None:
            example["text_pair"] = train.pairs[i]
        example["label"] = train.labels[i]
        examples.append(example)
    return LabelledStats(
        labels=list(labels),
        counts=counts,
        splits={role: len(split.texts) for role, split in data.items()},
        imbalance=max(present) / min(present),
        cross_split_duplicates=duplicates,
        duplicate_examples=duplicate_examples,
        examples=examples,
        text_pair=pair is not None,
        columns={"text": text, "text_pair": pair, "label": label},
        files=dict(files),
        encodings=dict(encodings),
        split_made=split_made,
    )


def _cross_split_duplicates(data: dict[str, _Split]) -> tuple[dict[str, int], list[dict]]:
    """Distinct texts (text + pair for sentence pairs; already stripped) found in two splits, per pair of splits present."""
    keys = {
        role: (split.texts if split.pairs is None else list(zip(split.texts, split.pairs)))
        for role, split in data.items()
    }
    sets = {role: set(k) for role, k in keys.items()}
    roles = list(data)
    counts = {
        f"{a}/{b}": len(sets[a] & sets[b]) for i, a in enumerate(roles) for b in roles[i + 1:]
    }
    examples, seen = [], set()
    for role in roles:
        for key in keys[role]:
            if len(examples) >= _EXAMPLES:
                break
            if key in seen:
                continue
            in_splits = [r for r in roles if key in sets[r]]
            if len(in_splits) > 1:
                seen.add(key)
                if isinstance(key, tuple):
                    examples.append({"text": key[0], "text_pair": key[1], "splits": in_splits})
                else:
                    examples.append({"text": key, "splits": in_splits})
    return counts, examples


def _to_dataset_dict(data: dict[str, _Split], labels: list[str]) -> datasets.DatasetDict:
    columns = {"text": datasets.Value("string")}
    if data["train"].pairs is not None:
        columns["text_pair"] = datasets.Value("string")
    columns["label"] = datasets.ClassLabel(names=labels)  # the same names, in the same order, in every split
    features = datasets.Features(columns)
    ids = {name: i for i, name in enumerate(labels)}
    out = {}
    for role, split in data.items():
        values = {"text": split.texts}
        if split.pairs is not None:
            values["text_pair"] = split.pairs
        values["label"] = [ids[name] for name in split.labels]
        out[role] = datasets.Dataset.from_dict(values, features=features)
    return datasets.DatasetDict(out)


def _publish(built: Path, dest: Path) -> None:
    """Move the finished dataset to dest, replacing an earlier one only once the new one exists."""
    if not dest.exists():
        built.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    dest.rename(old)
    try:
        built.rename(dest)
    except BaseException:
        old.rename(dest)  # put the previous dataset back
        raise
    shutil.rmtree(old, ignore_errors=True)

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

The reading of files into tables lives in `labelled_readers.py`; checking rows, splitting,
statistics and building the `DatasetDict` in `labelled_splits.py`. This module holds the public
API, the option checks, the choice of columns and the all-or-nothing save.

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from .labelled_readers import (
    FORMATS,
    LABEL_NAMES,
    MAX_CLASSES,
    TEXT_NAMES,
    DatasetError,
    Table,
    read_table,
    resolve_sources,
    where,
)
from .labelled_splits import (
    LabelledStats,
    cell_text,
    check_classes,
    check_known_labels,
    collect_rows,
    make_stats,
    split_train,
    to_dataset_dict,
)
from .staging import staged_dataset

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

_SPLITS = ("train", "validation", "test")
_PREVIEW_ROWS = 5  # rows inspect_columns returns
_LABEL_MAX_CHARS = 64  # longer values do not look like labels when guessing the label column


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
    (source,) = resolve_sources({"file": file}).values()
    table = read_table(source, file_format, has_header, wanted=set(), limit=_PREVIEW_ROWS)
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
    sources = resolve_sources({"train": train_file, "validation": validation_file, "test": test_file})
    dest = Path(dest_dir)
    _check_destination(dest)

    # --- read and check every file before writing anything
    requested = {c.strip() for c in (text_column, label_column, text_pair_column) if c}
    train_table = read_table(sources["train"], file_format, has_header, requested)
    text, label, pair = _resolve_columns(
        train_table, _strip(text_column), _strip(label_column), _strip(text_pair_column), max_classes
    )
    tables = {"train": train_table}
    for role in ("validation", "test"):
        if role in sources:
            wanted = {c for c in (text, label, pair) if c}
            tables[role] = read_table(sources[role], file_format, has_header, wanted)
            _require_columns(tables[role], text, label, pair, train_table)
    data = {role: collect_rows(table, text, label, pair) for role, table in tables.items()}
    labels = check_classes(train_table, label, data["train"].labels, max_classes)
    for role in ("validation", "test"):
        if role in data:
            check_known_labels(tables[role], label, data[role].labels, set(labels), train_table.name)

    # --- split off validation/test when they were not given
    split_made = "validation" not in data
    if split_made:
        make_test = "test" not in data and test_fraction > 0
        data.update(split_train(data["train"], train_table.name, seed, validation_fraction,
                                test_fraction if make_test else 0.0))
    files = {role: sources.get(role, sources["train"]).name for role in _SPLITS if role in data}
    data = {role: data[role] for role in _SPLITS if role in data}

    stats = make_stats(data, labels, text, label, pair, files,
                       {t.name: t.encoding for t in tables.values()}, split_made)

    # --- build in a temporary sibling of dest, then rename into place
    with staged_dataset(dest, DatasetError, "save the labelled dataset") as work_dir:
        to_dataset_dict(data, labels).save_to_disk(str(work_dir / "dataset"))
    return stats


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
    (source,) = resolve_sources({"file": file}).values()
    requested = {c.strip() for c in (text_column, label_column, text_pair_column) if c}
    limit = None if max_rows is None else max_rows + 1
    table = read_table(source, file_format, has_header, requested, limit, plain_lines=label_column is None)
    if max_rows is not None and len(table.rows) > max_rows:
        raise DatasetError(f"{table.name}: more than {max_rows:,} rows; split the file into smaller ones")

    text, label, pair = _strip(text_column), _strip(label_column), _strip(text_pair_column)
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(key="error.no_column", file=table.name, role=role, column=repr(column),
                               rest=f"{_available(table)}{_header_hint(table)}")
    if label is None:
        label = _usual_column(table.columns, LABEL_NAMES, {text, pair})
    if text is None:
        rest = [c for c in table.columns if c not in {label, pair}]
        text = _usual_column(rest, TEXT_NAMES, set()) or (rest[0] if len(rest) == 1 else None)
        if text is None:
            raise DatasetError(f"{table.name}: cannot tell which column holds the text; choose from the {_available(table)}")
    if pair is None and "text_pair" in table.columns and "text_pair" not in {text, label}:
        pair = "text_pair"

    columns = [c for c in (text, pair, label) if c is not None]
    values: dict[str, list[str]] = {c: [] for c in columns}
    empty: dict[str, list[int]] = {c: [] for c in columns}
    for row, position in zip(table.rows, table.positions):
        for column in columns:
            value = cell_text(table, column, row.get(column), position, is_label=column == label)
            if value is None:
                empty[column].append(position)
            values[column].append(value)
    for column, kind in ((text, "text"), (pair, "text pair"), (label, "label")):
        if column is not None and empty[column]:
            hint = "; leave the label column out to predict without scoring" if column == label else ""
            raise DatasetError(
                f"{table.name}: column {column!r}: empty or missing {kind} on {where(table.unit, empty[column])}{hint}"
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


# ---------------------------------------------------------------------------- columns


def _resolve_columns(table: Table, text: str | None, label: str | None, pair: str | None,
                     max_classes: int) -> tuple[str, str, str | None]:
    """The (text, label, text_pair) column names: the requested ones, else the defaults (module docstring)."""
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(key="error.no_column", file=table.name, role=role, column=repr(column),
                               rest=f"{_available(table)}{_header_hint(table)}")
    if text is None:
        text = _usual_column(table.columns, TEXT_NAMES, {label, pair})
    if label is None:
        label = _usual_column(table.columns, LABEL_NAMES, {text, pair})
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


def _looks_like_labels(table: Table, column: str, max_classes: int) -> bool:
    values = {str(v).strip() for row in table.rows if (v := row.get(column)) is not None and str(v).strip()}
    return bool(values) and len(values) <= max_classes and all(
        len(v) <= _LABEL_MAX_CHARS and not any(ch.isspace() for ch in v) for v in values
    )


def _require_columns(table: Table, text: str, label: str, pair: str | None, train: Table) -> None:
    """Validation/test files must have the train file's chosen columns under the same names."""
    for role, column in (("text", text), ("label", label), ("text pair", pair)):
        if column is not None and column not in table.columns:
            raise DatasetError(
                f"{table.name}: no {role} column {column!r} (the column used in {train.name}); "
                f"{_available(table)}{_header_hint(table)}"
            )


def _available(table: Table) -> str:
    return "available columns: " + ", ".join(repr(c) for c in table.columns)


def _header_hint(table: Table) -> str:
    if table.has_header is False:
        return "; the file was read without a header row (columns col1, col2, ...): set has_header if it has one"
    if table.has_header:
        return "; the first row was read as the header: unset has_header if the file has none"
    return ""


def _preview_cell(value):
    if isinstance(value, str) and "\r" in value:
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return value


# ---------------------------------------------------------------------------- saving



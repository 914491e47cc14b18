"""From read tables to the saved dataset: each row's cells as clean text, the label checks, the
stratified train/validation(/test) split, the statistics shown in the UI (`LabelledStats`), and
the `datasets.DatasetDict` that `labelled.py` saves.

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass

import datasets

from .labelled_readers import DatasetError, Table, where
from .readers import MAX_DOCUMENT_CHARS

_EXAMPLES = 10  # train rows and cross-split duplicates shown in the stats
# How tables exported by pandas or spreadsheets spell a missing value (pandas' NA strings, less the
# ones that can be real class names: "None", "NA"). As a label they mean "no label", not a class.
MISSING_LABELS = frozenset({"nan", "-nan", "<na>", "#n/a", "#na", "n/a", "null"})


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
class Split:
    """The checked examples of one split."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[str]

    def subset(self, indices: list[int]) -> Split:
        pairs = None if self.pairs is None else [self.pairs[i] for i in indices]
        return Split([self.texts[i] for i in indices], pairs, [self.labels[i] for i in indices])


# ----------------------------------------------------------------------- row checking


def collect_rows(table: Table, text: str, label: str, pair: str | None) -> Split:
    """The cleaned text/pair/label of every row; empty or unusable cells raise naming their lines."""
    texts, pairs, labels = [], [] if pair else None, []
    empty: dict[str, list[int]] = {text: [], label: [], **({pair: []} if pair else {})}
    for row, position in zip(table.rows, table.positions):
        cleaned = {}
        for column, empty_positions in empty.items():
            value = cell_text(table, column, row.get(column), position, is_label=column == label)
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
                f"{table.name}: column {column!r}: empty or missing {kind} on {where(table.unit, empty[column])}"
            )
    return Split(texts, pairs, labels)


def cell_text(table: Table, column: str, value, position: int, is_label: bool = False) -> str | None:
    """A cell as stripped text with LF line ends; None when missing or empty (for a label also "NaN", "null", ...).
    Numbers become their digits. A cell over MAX_DOCUMENT_CHARS is refused, naming its line."""
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
    if len(value) > MAX_DOCUMENT_CHARS:
        raise DatasetError(
            f"{table.name}: column {column!r}, {table.unit} {position}: {len(value):,} characters, over the limit "
            f"of {MAX_DOCUMENT_CHARS:,} for one example; check the quoting and the column"
        )
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.strip()
    if is_label and value.lower() in MISSING_LABELS:
        return None
    return value or None


def check_classes(table: Table, column: str, labels: list[str], max_classes: int) -> list[str]:
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


def check_known_labels(table: Table, column: str, labels: list[str], known: set[str], train_name: str) -> None:
    """A validation/test label that train never has cannot be predicted; name it and its lines."""
    unknown: dict[str, list[int]] = {}
    for value, position in zip(labels, table.positions):
        if value not in known:
            unknown.setdefault(value, []).append(position)
    if unknown:
        shown = "; ".join(f"{name!r} on {where(table.unit, lines)}" for name, lines in list(unknown.items())[:5])
        more = f"; and {len(unknown) - 5} more labels" if len(unknown) > 5 else ""
        raise DatasetError(
            f"{table.name}: column {column!r}: labels that never occur in the train file {train_name}: {shown}{more}"
        )


def _sort_labels(names: set[str]) -> list[str]:
    """Numerically when every label is an integer ("2" before "10"), else naturally ("c2" before "c10")."""
    if all(re.fullmatch(r"[+-]?\d+", n) for n in names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names, key=lambda n: ([(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", n)], n))


# ------------------------------------------------------------------------- splitting


def split_train(train: Split, name: str, seed: int, validation_fraction: float,
                test_fraction: float) -> dict[str, Split]:
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


# ---------------------------------------------------------- stats and the DatasetDict


def make_stats(data: dict[str, Split], labels: list[str], text: str, label: str, pair: str | None,
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


def _cross_split_duplicates(data: dict[str, Split]) -> tuple[dict[str, int], list[dict]]:
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


def to_dataset_dict(data: dict[str, Split], labels: list[str]) -> datasets.DatasetDict:
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

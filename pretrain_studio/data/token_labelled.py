"""Token-labelled (NER) datasets: read the files, detect and convert the tag scheme, split, count, save.

`ingest_token_labelled(train_file, dest_dir, ...)` reads the train file (and optional validation and test files)
with `token_readers.py`, detects the tag scheme over all of them (`tag_schemes.py`), converts every sentence to
IOB2, splits off validation (and test) sentences when those files are missing (by document when the file has
`-DOCSTART-` lines, so that one news story never lands in two splits; else by sentence), and saves a
`datasets.DatasetDict` with the columns `tokens` (list of str) and `tags` (list of `ClassLabel`: O, B-X, I-X)
all or nothing. `load_token_labelled` opens it again.

The statistics (`TokenStats`) are what a user checks before training: sentences, tokens and entities per type
in each split, the scheme as found, a sentence length histogram, whether the file is one character per line,
impossible tag sequences (where), and the share of test entities never seen in training (the "unseen entity"
share, which bounds what memorising can do).

This module must not import gradio: it is used by the training code and the tests too.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from ..config import TOKEN_TASK
from .labelled_readers import DatasetError, resolve_sources
from .staging import staged_dataset
from .tag_schemes import TagProblems, TagSchemeError, detect_scheme, entity_spans, iob2_labels, to_iob2
from .token_readers import Sentence, TokenFile, read_token_file

_SPLITS = ("train", "validation", "test")
_HISTOGRAM_EDGES = (1, 5, 10, 20, 30, 40, 60, 80, 120, 160, 250)  # sentence lengths in tokens


@dataclass
class TokenStats:
    task: str
    labels: list[str]  # the IOB2 tags the model predicts
    entity_types: list[str]
    tag_scheme: str  # as found in the files (the data is stored as IOB2)
    splits: dict[str, int]  # sentences per split
    tokens: dict[str, int]
    counts: dict[str, dict[str, int]]  # entities per type per split
    length_histogram: dict[str, int]  # "1-4": sentences of that many tokens (train)
    longest_sentence: int
    character_level: bool
    documents: dict[str, int]
    split_made: bool
    split_by: str | None  # "document" or "sentence" when splits were made
    files: dict[str, str]
    encodings: dict[str, str]
    formats: dict[str, str]
    tag_problems: dict  # {"count", "places", "message"}
    unseen_test_entities: float | None  # share of the scored split's entities whose text never is an entity in train
    imbalance: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def ingest_token_labelled(train_file, dest_dir, *, validation_file=None, test_file=None, file_format: str = "auto",
                          seed: int = 42, validation_fraction: float = 0.1, test_fraction: float = 0.1,
                          tokens_field: str | None = None, tags_field: str | None = None,
                          label_names: list[str] | None = None) -> TokenStats:
    """Read, check, convert to IOB2, split if needed and save at dest_dir (nothing is left there on error)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed must be a whole number >= 0, got {seed!r}")
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise DatasetError(f"{name} must be a number from 0 to below 1, got {value!r}")
    sources = resolve_sources({"train": train_file, "validation": validation_file, "test": test_file})
    files: dict[str, TokenFile] = {}
    for role, source in sources.items():
        files[role] = read_token_file(source.path, file_format, tokens_field, tags_field, label_names, source=source)

    # --- one scheme for all files, every sentence in IOB2
    try:
        scheme = detect_scheme({f.name: f.first_place for f in files.values()},
                               (s.tags for f in files.values() for s in f.sentences))
    except TagSchemeError as exc:
        raise DatasetError(str(exc)) from None
    problems = TagProblems()
    data: dict[str, list[Sentence]] = {}
    for role, token_file in files.items():
        data[role] = [Sentence(s.tokens, to_iob2(s.tags, scheme, problems, [token_file.place(n) for n in s.lines]),
                               s.lines, s.document) for s in token_file.sentences]
    types = sorted({t[2:] for s in data["train"] for t in s.tags if t != "O"})
    if not types:
        raise DatasetError(f"{files['train'].name}: no entities: every tag is O")
    for role in ("validation", "test"):
        if role in data:
            unknown = sorted({t[2:] for s in data[role] for t in s.tags if t != "O"} - set(types))
            if unknown:
                raise DatasetError(f"{files[role].name}: entity type(s) {', '.join(unknown)} never occur in "
                                   f"{files['train'].name}; the model could not learn them")

    # --- split off validation / test when not given
    split_made, split_by = "validation" not in data, None
    if split_made:
        by_document = files["train"].documents > 1
        split_by = "document" if by_document else "sentence"
        make_test = "test" not in data and test_fraction > 0
        data.update(_split(data["train"], by_document, seed, validation_fraction,
                           test_fraction if make_test else 0.0, files["train"].name))
    data = {role: data[role] for role in _SPLITS if role in data}
    labels = iob2_labels(types)
    stats = _stats(data, files, labels, types, scheme, problems, split_made, split_by)

    dest = Path(dest_dir)
    with staged_dataset(dest, DatasetError, "save the token dataset") as work_dir:
        _to_dataset_dict(data, labels).save_to_disk(str(work_dir / "dataset"))
    return stats


def load_token_labelled(path) -> datasets.DatasetDict:
    """Columns "tokens" and "tags" (a sequence of ClassLabel: O, B-X, I-X), splits train, validation(, test)."""
    path = Path(path)
    if not (path / "dataset_dict.json").is_file():
        raise DatasetError(f"{path}: no token dataset here (upload it first)")
    dataset = datasets.load_from_disk(str(path))
    if "tags" not in dataset["train"].column_names:
        raise DatasetError(f"{path}: not a token-classification dataset (it has no tags column)")
    return dataset


def tag_names(dataset: datasets.DatasetDict) -> list[str]:
    return dataset["train"].features["tags"].feature.names


def _split(train: list[Sentence], by_document: bool, seed: int, validation_fraction: float, test_fraction: float,
           name: str) -> dict[str, list[Sentence]]:
    """Random train/validation(/test) split of whole documents (or sentences); each split keeps file order."""
    groups: dict[int, list[int]] = {}
    for i, sentence in enumerate(train):
        groups.setdefault(sentence.document if by_document else i, []).append(i)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    n_test = round(test_fraction * len(keys)) if test_fraction else 0
    n_validation = max(1, round(validation_fraction * len(keys)))
    if n_test + n_validation >= len(keys):
        unit = "documents" if by_document else "sentences"
        raise DatasetError(f"{name}: too few {unit} ({len(keys)}) to split off validation/test; give more or a "
                           "validation file")
    test, validation = set(keys[:n_test]), set(keys[n_test:n_test + n_validation])
    out = {"train": [], "validation": [], "test": []}
    for key in sorted(groups, key=lambda k: groups[k][0]):
        role = "test" if key in test else "validation" if key in validation else "train"
        out[role].extend(train[i] for i in groups[key])
    if not n_test:
        del out["test"]
    return out


def _entities(sentences: list[Sentence]) -> list[tuple[str, str]]:
    """(text, type) of every entity."""
    return [(" ".join(s.tokens[a:b]), kind) for s in sentences for a, b, kind in entity_spans(s.tags)]


def _histogram(lengths: list[int]) -> dict[str, int]:
    edges = list(_HISTOGRAM_EDGES)
    out = {}
    for low, high in zip(edges, edges[1:] + [None]):
        label = f"{low}-{high - 1}" if high else f"{low}+"
        out[label] = sum(1 for n in lengths if n >= low and (high is None or n < high))
    return {k: v for k, v in out.items() if v} or {"1-4": 0}


def _stats(data, files, labels, types, scheme, problems, split_made, split_by) -> TokenStats:
    counts = {role: dict(sorted(Counter(kind for _, kind in _entities(s)).items())) for role, s in data.items()}
    scored = "test" if "test" in data else "validation"
    train_entities = {text for text, _ in _entities(data["train"])}
    scored_entities = _entities(data[scored])
    unseen = (sum(1 for text, _ in scored_entities if text not in train_entities) / len(scored_entities)
              if scored_entities else None)
    train_tokens = [t for s in data["train"] for t in s.tokens]
    character_level = bool(train_tokens) and sum(len(t) == 1 for t in train_tokens) >= 0.95 * len(train_tokens)
    train_counts = [n for n in counts["train"].values() if n]
    return TokenStats(
        task=TOKEN_TASK, labels=labels, entity_types=types, tag_scheme=scheme,
        splits={role: len(s) for role, s in data.items()},
        tokens={role: sum(len(x.tokens) for x in s) for role, s in data.items()},
        counts=counts, length_histogram=_histogram([len(s.tokens) for s in data["train"]]),
        longest_sentence=max(len(s.tokens) for s in data["train"]), character_level=character_level,
        documents={role: f.documents for role, f in files.items() if f.documents},
        split_made=split_made, split_by=split_by,
        files={role: files.get(role, files["train"]).name for role in data},
        encodings={f.name: f.encoding for f in files.values()}, formats={f.name: f.kind for f in files.values()},
        tag_problems={"count": problems.count, "places": problems.places, "message": problems.sentence()},
        unseen_test_entities=unseen,
        imbalance=max(train_counts) / min(train_counts) if train_counts else None,
    )


def _to_dataset_dict(data: dict[str, list[Sentence]], labels: list[str]) -> datasets.DatasetDict:
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.ClassLabel(names=labels))})
    index = {name: i for i, name in enumerate(labels)}
    return datasets.DatasetDict({
        role: datasets.Dataset.from_dict({"tokens": [s.tokens for s in sentences],
                                          "tags": [[index[t] for t in s.tags] for s in sentences]}, features=features)
        for role, sentences in data.items()
    })

"""Labelled datasets: ingest (train, optional validation and test files), column pickers, listing.

Two tasks: text classification (a label per text, `data/labelled.py`) and token classification (a tag per token,
NER, `data/token_labelled.py`). `task="auto"` tells them apart by the train file's content."""

from __future__ import annotations

from ..data.labelled import DatasetError, ingest_labelled, inspect_columns
from ..config import SEQUENCE_TASK, TOKEN_TASK
from ..data.token_labelled import ingest_token_labelled
from ..data.token_readers import looks_like_token_file, parse_label_names
from ..errors import NotFoundError, StudioError, file_path
from ..registry import new_id
from ..workspace import Workspace


TASKS = ("auto", SEQUENCE_TASK, TOKEN_TASK)


class DatasetService:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.registry = workspace.registry

    def upload_dataset(self, name: str, train_file, text_column: str | None = None, label_column: str | None = None,
                       validation_file=None, test_file=None, text_pair_column: str | None = None,
                       file_format: str = "auto", has_header: bool | None = None, seed: int = 42,
                       task: str = "auto", label_names=None) -> dict:
        """Ingest a labelled dataset (train file, optional validation and test files); nothing is stored on error.
        For token classification, `text_column` / `label_column` name the JSON Lines fields of the tokens and the
        tags, and `label_names` names integer tags."""
        train = file_path(train_file)
        if train is None:
            raise StudioError(key="error.no_train_file")
        task = (task or "auto").strip()
        if task not in TASKS:
            raise StudioError(f"task: unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if task == "auto":
            forced = (file_format or "auto") in ("conll",)
            task = TOKEN_TASK if forced or looks_like_token_file(train) else SEQUENCE_TASK
        dataset_id = new_id("dataset")
        dest = self.workspace.datasets_dir / dataset_id
        try:
            if task == TOKEN_TASK:
                stats = ingest_token_labelled(
                    train, dest, validation_file=file_path(validation_file), test_file=file_path(test_file),
                    file_format=file_format or "auto", seed=int(seed), tokens_field=text_column or None,
                    tags_field=label_column or None, label_names=parse_label_names(label_names))
            else:
                stats = ingest_labelled(train, dest, text_column=text_column or None, label_column=label_column or None,
                                    text_pair_column=text_pair_column or None,
                                    validation_file=file_path(validation_file), test_file=file_path(test_file),
                                    file_format=file_format or "auto", has_header=has_header, seed=int(seed))
        except DatasetError as exc:
            raise StudioError.of(exc) from None
        except OSError as exc:
            raise StudioError(f"{train.name}: {exc}") from None
        row = self.registry.add_dataset(dataset_id, (name or "").strip() or train.name, str(dest), stats.to_dict())
        return dataset_summary(row)

    def inspect_dataset_file(self, file, file_format: str = "auto") -> dict:
        """Columns and first rows of a labelled file, for the column pickers; a token-labelled file says so
        ({"task": "token_classification", "format", "columns": its JSON Lines fields or none})."""
        path = file_path(file)
        if path is not None and looks_like_token_file(path):
            return token_file_preview(path)
        try:
            return {"task": SEQUENCE_TASK, **inspect_columns(path, file_format or "auto")}
        except DatasetError as exc:
            raise StudioError.of(exc) from None

    def list_datasets(self) -> list[dict]:
        return [dataset_summary(row) for row in self.registry.list_datasets()]

    def get_dataset(self, dataset_id: str) -> dict:
        row = self.registry.get_dataset(dataset_id or "")
        if row is None:
            raise NotFoundError(key="error.dataset_missing_plain", id=repr(dataset_id))
        return {**dataset_summary(row), "stats": row["stats"]}


def dataset_summary(row: dict) -> dict:
    """What listing and uploading return. `counts` are rows per label (text classification) or entities per type
    (token classification) in each split; `splits` are rows or sentences."""
    stats = row["stats"]
    summary = {"dataset_id": row["id"], "name": row["name"], "task": dataset_task(row), "labels": row["labels"],
               "counts": stats["counts"], "splits": stats["splits"], "imbalance": stats.get("imbalance"),
               "cross_split_duplicates": stats.get("cross_split_duplicates", {}), "text_pair": stats.get("text_pair")}
    if summary["task"] == TOKEN_TASK:
        summary.update({key: stats.get(key) for key in (
            "tag_scheme", "entity_types", "tokens", "character_level", "tag_problems", "unseen_test_entities",
            "length_histogram", "longest_sentence", "split_by", "documents")})
        summary["sentences"] = stats["splits"]
        summary["entities"] = stats["counts"]
    return summary


def dataset_task(row: dict) -> str:
    """The task a dataset row was ingested for (rows from before token classification are text classification)."""
    return row["stats"].get("task") or SEQUENCE_TASK


def token_file_preview(path) -> dict:
    """What the column pickers need of a token-labelled file: its format, and for JSON Lines its fields."""
    import json

    first = next((line for line in path.open(encoding="utf-8", errors="replace") if line.strip()), "")
    if first.lstrip().startswith("{"):
        try:
            fields = list(json.loads(first))
        except (json.JSONDecodeError, TypeError):
            fields = []
        guess_tokens = next((f for f in ("tokens", "words") if f in fields), None)
        guess_tags = next((f for f in ("ner_tags", "tags", "labels", "label", "ner") if f in fields), None)
        return {"task": TOKEN_TASK, "format": "jsonl", "columns": fields,
                "guess": {"text": guess_tokens, "label": guess_tags, "text_pair": None}}
    return {"task": TOKEN_TASK, "format": "conll", "columns": [], "guess": {"text": None, "label": None,
                                                                      "text_pair": None}}

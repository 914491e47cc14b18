"""Labelled datasets: ingest (train, optional validation and test files), column pickers, listing."""

from __future__ import annotations

from ..data.labelled import DatasetError, ingest_labelled, inspect_columns
from ..errors import NotFoundError, StudioError, file_path
from ..registry import new_id
from ..workspace import Workspace


class DatasetService:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.registry = workspace.registry

    def upload_dataset(self, name: str, train_file, text_column: str | None = None, label_column: str | None = None,
                       validation_file=None, test_file=None, text_pair_column: str | None = None,
                       file_format: str = "auto", has_header: bool | None = None, seed: int = 42) -> dict:
        """Ingest a labelled dataset (train file, optional validation and test files); nothing is stored on error."""
        train = file_path(train_file)
        if train is None:
            raise StudioError(key="error.no_train_file")
        dataset_id = new_id("dataset")
        dest = self.workspace.datasets_dir / dataset_id
        try:
            stats = ingest_labelled(train, dest, text_column=text_column or None, label_column=label_column or None,
                                    text_pair_column=text_pair_column or None,
                                    validation_file=file_path(validation_file), test_file=file_path(test_file),
                                    file_format=file_format or "auto", has_header=has_header, seed=int(seed))
        except DatasetError as exc:
            raise StudioError.of(exc) from None
        row = self.registry.add_dataset(dataset_id, (name or "").strip() or train.name, str(dest), stats.to_dict())
        return dataset_summary(row)

    def inspect_dataset_file(self, file, file_format: str = "auto") -> dict:
        """Columns and first rows of a labelled file, for the column pickers."""
        try:
            return inspect_columns(file_path(file), file_format or "auto")
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
    stats = row["stats"]
    return {"dataset_id": row["id"], "name": row["name"], "labels": row["labels"], "counts": stats["counts"],
            "splits": stats["splits"], "imbalance": stats.get("imbalance"),
            "cross_split_duplicates": stats.get("cross_split_duplicates", {}), "text_pair": stats.get("text_pair")}

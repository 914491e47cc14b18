"""The fine-tuning half of the engine's front desk: labelled datasets, fine-tuning runs, classification.

`FinetuneDesk` is mixed into `Studio` (studio.py), which provides the
workspace, the registry, the queue and the shared checks. Plain data in and
out, `StudioError` for anything the user can fix; no Gradio here.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .config import ConfigError, FinetuneConfig
from .jobs import resolve_model_dir
from .registry import new_id

MAX_PREDICT_ROWS = 100_000  # rows of an uploaded prediction file; beyond this, use the CLI in batches


class StudioError(ValueError):
    """A user-facing error: bad input or a request that cannot be met. The message says what and where."""


class NotFoundError(StudioError):
    """A run, corpus or dataset id that names nothing (HTTP routes answer it with 404)."""


def _path(file) -> Path | None:
    """Gradio gives str paths (UI) or FileData dicts (API); tests and the CLI give Paths."""
    if file is None or file == "":
        return None
    return Path(file["path"] if isinstance(file, dict) else file)


class FinetuneDesk:
    """Datasets, fine-tuning and classification, on top of Studio's workspace and queue."""

    # --- labelled datasets --------------------------------------------------------

    def upload_dataset(self, name: str, train_file, text_column: str | None = None, label_column: str | None = None,
                       validation_file=None, test_file=None, text_pair_column: str | None = None,
                       file_format: str = "auto", has_header: bool | None = None, seed: int = 42) -> dict:
        """Ingest a labelled dataset (train file, optional validation and test files); nothing is stored on error."""
        from .data.labelled import DatasetError, ingest_labelled

        train = _path(train_file)
        if train is None:
            raise StudioError("no training file given: upload a .csv, .tsv, .jsonl, .parquet or labelled .txt file")
        dataset_id = new_id("dataset")
        dest = self.workspace.datasets_dir / dataset_id
        try:
            stats = ingest_labelled(train, dest, text_column=text_column or None, label_column=label_column or None,
                                    text_pair_column=text_pair_column or None,
                                    validation_file=_path(validation_file), test_file=_path(test_file),
                                    file_format=file_format or "auto", has_header=has_header, seed=int(seed))
        except DatasetError as exc:
            raise StudioError(str(exc)) from None
        row = self.registry.add_dataset(dataset_id, (name or "").strip() or train.name, str(dest), stats.to_dict())
        return dataset_summary(row)

    def inspect_dataset_file(self, file, file_format: str = "auto") -> dict:
        """Columns and first rows of a labelled file, for the column pickers."""
        from .data.labelled import DatasetError, inspect_columns

        try:
            return inspect_columns(_path(file), file_format or "auto")
        except DatasetError as exc:
            raise StudioError(str(exc)) from None

    def list_datasets(self) -> list[dict]:
        return [dataset_summary(row) for row in self.registry.list_datasets()]

    def get_dataset(self, dataset_id: str) -> dict:
        row = self.registry.get_dataset(dataset_id or "")
        if row is None:
            raise NotFoundError(f"dataset {dataset_id!r} does not exist")
        return {**dataset_summary(row), "stats": row["stats"]}

    # --- fine-tuning ----------------------------------------------------------------

    def finetune_config(self, values: dict, check_data: bool = True) -> FinetuneConfig:
        """A validated config, base model checked on disk; check_data=False skips the dataset lookup (as above)."""
        try:
            cfg = FinetuneConfig.from_dict(values or {}).validate()
        except ConfigError as exc:
            raise StudioError(str(exc)) from None
        if check_data and self.registry.get_dataset(cfg.dataset_id) is None:
            raise StudioError(f"dataset_id: dataset {cfg.dataset_id!r} does not exist")
        self._check_model_and_device(cfg)
        self._check_model_shape(cfg)
        return cfg

    def _check_model_shape(self, cfg: FinetuneConfig) -> None:
        """Target modules and layer counts must exist in the base model: checked on an empty ("meta") copy of
        its architecture, so no weights are loaded and nothing is queued when they don't."""
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        from .model_store import architecture_folder
        from .training.peft_methods import check_target_modules, encoder_layers, target_modules_for

        if cfg.method not in ("lora", "adalora", "ia3", "top_layers"):
            return
        folder = architecture_folder(resolve_model_dir(self.workspace, cfg.base_model))
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
        try:
            if cfg.method == "top_layers":
                layers = len(encoder_layers(model))
                if cfg.top_layers > layers:
                    raise ConfigError("top_layers", f"the model has only {layers} encoder layers")
            else:
                check_target_modules(model, target_modules_for(model, cfg), cfg.method)
        except ConfigError as exc:
            raise StudioError(str(exc)) from None

    def start_finetuning(self, values: dict) -> dict:
        """Validate, queue, and return at once: {run_id, status}."""
        return self._queue(self.finetune_config(values))

    def parameter_report(self, values: dict) -> dict:
        """Before launch: trainable and total parameters of the model this config would train."""
        cfg = self.finetune_config(values)
        from .training.finetune import build_classifier

        labels = self.registry.get_dataset(cfg.dataset_id)["labels"]
        try:
            _, _, counts = build_classifier(cfg, resolve_model_dir(self.workspace, cfg.base_model),
                                            self.workspace.root / "tmp", labels, total_steps=100)
        except ConfigError as exc:
            raise StudioError(str(exc)) from None
        return counts

    # --- trying classifiers ------------------------------------------------------------

    def classifier_models(self) -> list[dict]:
        from .studio import run_summary

        return [run_summary(r) for r in self.registry.list_runs()
                if r["kind"] == "finetune" and r["status"] in ("completed", "stopped")
                and (self.workspace.run_dir(r["id"]) / "model").is_dir()]

    def classify(self, model: str, text: str, text_pair: str | None = None) -> dict:
        """{label, scores: {label: probability}} for one text (and an optional second text)."""
        from .inference import PredictionError, classify

        if not (text or "").strip():
            raise StudioError("text: enter a text to classify")
        try:
            return classify(resolve_model_dir(self.workspace, model), text, text_pair or None)
        except (PredictionError, ValueError, OSError) as exc:
            raise StudioError(str(exc)) from None

    def predict_file(self, model: str, file, text_column: str | None = None, label_column: str | None = None) -> dict:
        """Predictions for every row of a file, written as CSV; metrics when the file has labels.
        Returns {file, rows, metrics, misclassified}."""
        from .inference import PredictionError, predict_rows
        from .data.labelled import DatasetError, read_prediction_rows

        source = _path(file)
        if source is None:
            raise StudioError("no file given")
        try:
            folder = resolve_model_dir(self.workspace, model)
            texts, pairs, gold = read_prediction_rows(source, text_column or None, label_column or None,
                                                      max_rows=MAX_PREDICT_ROWS)
            result = predict_rows(folder, texts, pairs, gold)
        except (DatasetError, PredictionError, ValueError, OSError) as exc:
            raise StudioError(str(exc)) from None
        out_dir = self.workspace.root / "predictions"
        out_dir.mkdir(exist_ok=True)
        out = out_dir / f"{source.stem}-{new_id('pred')}.csv"
        write_predictions(out, result["rows"])
        return {"file": str(out), "rows": len(result["rows"]), "metrics": result["metrics"],
                "misclassified": result["misclassified"][:200]}


def write_predictions(path: Path, rows: list[dict]) -> None:
    """The predictions CSV, in plain UTF-8. Not with a byte-order mark, although Excel wants one to show
    Chinese without an import step: scripts that read this file through the API with Python's csv module
    would find the mark glued to the first column's name (it broke tests/e2e/test_finetune_api.py), and
    the file's format is part of the API's contract."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["text"])
        writer.writeheader()
        writer.writerows(rows)


def dataset_summary(row: dict) -> dict:
    stats = row["stats"]
    return {"dataset_id": row["id"], "name": row["name"], "labels": row["labels"], "counts": stats["counts"],
            "splits": stats["splits"], "imbalance": stats.get("imbalance"),
            "cross_split_duplicates": stats.get("cross_split_duplicates", {}), "text_pair": stats.get("text_pair")}

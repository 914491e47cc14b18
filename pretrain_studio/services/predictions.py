"""Trying models: fill-mask on pretrained runs, classification of a text, the entities of a text, scoring a whole
file (a file of texts, or for a token classifier also a CoNLL or JSON Lines file with gold tags)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import StudioError, file_path
from ..model_lookup import has_usable_model, resolve_model_dir
from ..registry import new_id
from ..workspace import Workspace
from ..config import TOKEN_TASK
from .views import run_summary

MAX_PREDICT_ROWS = 100_000  # rows of an uploaded prediction file; beyond this, use the CLI in batches


class PredictionService:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.registry = workspace.registry

    def _models(self, kind: str, task: str | None = None) -> list[dict]:
        runs = [run_summary(r) for r in self.registry.list_runs()
                if r["kind"] == kind and has_usable_model(self.workspace, r)]
        if task is not None:
            runs = [r for r in runs if (r["task"] == TOKEN_TASK) == (task == TOKEN_TASK)]
        return runs

    def mlm_models(self) -> list[dict]:
        """Runs whose model can fill masks: completed (or stopped) pretraining runs with a saved model."""
        return self._models("pretrain")

    def classifier_models(self) -> list[dict]:
        """Completed (or stopped) text-classification runs with a saved classifier."""
        return self._models("finetune", "sequence_classification")

    def tagger_models(self) -> list[dict]:
        """Completed (or stopped) token-classification (NER) runs with a saved model."""
        return self._models("finetune", TOKEN_TASK)

    def tag_entities(self, model: str, text: str) -> list[dict]:
        """The entities of a text: [{start, end, type, score, text}], character offsets into `text`."""
        from ..inference import PredictionError
        from ..tagging import tag_entities

        if not (text or "").strip():
            raise StudioError(key="error.enter_text")
        try:
            return tag_entities(resolve_model_dir(self.workspace, model), text)
        except (PredictionError, ValueError, OSError) as exc:
            raise StudioError.of(exc) from None

    def fill_mask(self, model: str, text: str, top_k: int = 5) -> list[list[dict]]:
        from ..inference import fill_mask

        try:
            return fill_mask(resolve_model_dir(self.workspace, model), text, top_k)
        except (ValueError, OSError) as exc:
            raise StudioError.of(exc) from None

    def classify(self, model: str, text: str, text_pair: str | None = None) -> dict:
        """{label, scores: {label: probability}} for one text (and an optional second text)."""
        from ..inference import PredictionError, classify

        if not (text or "").strip():
            raise StudioError(key="error.enter_text")
        try:
            return classify(resolve_model_dir(self.workspace, model), text, text_pair or None)
        except (PredictionError, ValueError, OSError) as exc:
            raise StudioError.of(exc) from None

    def predict_file(self, model: str, file, text_column: str | None = None, label_column: str | None = None) -> dict:
        """Predictions for every row of a file, written as CSV; metrics when the file has labels.
        Returns {file, rows, metrics, misclassified}."""
        from ..data.labelled import DatasetError, read_prediction_rows
        from ..inference import PredictionError, predict_rows

        source = file_path(file)
        if source is None:
            raise StudioError(key="error.no_file")
        if self._is_tagger(model):
            return self.tag_file(model, source)
        try:
            folder = resolve_model_dir(self.workspace, model)
            texts, pairs, gold = read_prediction_rows(source, text_column or None, label_column or None,
                                                      max_rows=MAX_PREDICT_ROWS)
            result = predict_rows(folder, texts, pairs, gold)
        except (DatasetError, PredictionError, ValueError, OSError) as exc:
            raise StudioError.of(exc) from None
        out_dir = self.workspace.root / "predictions"
        out_dir.mkdir(exist_ok=True)
        out = out_dir / f"{source.stem}-{new_id('pred')}.csv"
        write_predictions(out, result["rows"])
        return {"file": str(out), "rows": len(result["rows"]), "metrics": result["metrics"],
                "misclassified": result["misclassified"][:200]}


    def _is_tagger(self, model: str) -> bool:
        from ..model_store import is_token_classifier

        try:
            return is_token_classifier(resolve_model_dir(self.workspace, model))
        except (ValueError, OSError):
            return False  # predict_file says what is wrong with the model

    def tag_file(self, model: str, file) -> dict:
        """Tag every sentence of a file and write the predictions in its own format: a CoNLL or JSON Lines file of
        tagged tokens gets the predicted tags beside the gold ones, and the entity scores and error table; a file
        of texts (one per line) gets JSON Lines of the entities of each. Returns {file, rows, metrics,
        error_table}."""
        from ..data.labelled import DatasetError
        from ..inference import PredictionError
        from ..tagging import tag_file

        source = file_path(file)
        if source is None:
            raise StudioError(key="error.no_file")
        out_dir = self.workspace.root / "predictions"
        out_dir.mkdir(exist_ok=True)
        try:
            folder = resolve_model_dir(self.workspace, model)
            return tag_file(folder, source, out_dir / f"{source.stem}-{new_id('pred')}", MAX_PREDICT_ROWS)
        except (DatasetError, PredictionError, ValueError, OSError) as exc:
            raise StudioError.of(exc) from None


def write_predictions(path: Path, rows: list[dict]) -> None:
    """The predictions CSV, in plain UTF-8. Not with a byte-order mark, although Excel wants one to show
    Chinese without an import step: scripts that read this file through the API with Python's csv module
    would find the mark glued to the first column's name (it broke tests/e2e/test_finetune_api.py), and
    the file's format is part of the API's contract."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["text"])
        writer.writeheader()
        writer.writerows(rows)

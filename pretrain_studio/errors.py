"""The errors a user can fix: bad input, or a request that cannot be met. Every front door shows their message.

An error made from a key (`UserError(key="error.file_empty", file="notes.txt")`) writes its English message
from the template in `MESSAGES` and keeps the key and the parameters, so the UI shows it in the browser tab's
language by key (ui/locales/zh.py has every key here, with the same placeholders: tests/ui/test_i18n.py),
never by matching the English text. An error made from a plain message stays English everywhere.

Services raise `StudioError` (the UI and the API turn it into `gr.Error`, the CLI into a one-line message and
exit code 2); `NotFoundError` is the one HTTP routes answer with 404; `config.ConfigError` (a setting) and
the data readers' errors are `UserError`s too.
"""

from __future__ import annotations

from pathlib import Path

# The English of every keyed error. `{why}`, when a template has it, is filled with ": <reason>" or nothing.
MESSAGES: dict[str, str] = {
    "error.must_be_greater": "{field}: must be greater than {min} (got {got}){why}",
    "error.must_be_at_least": "{field}: must be at least {min} (got {got}){why}",
    "error.must_be_at_most": "{field}: must be at most {max} (got {got})",
    "error.must_be_below": "{field}: must be below {max}",
    "error.share_of_run": "{field}: is a share of the run: give a number from 0 to 1",
    "error.not_whole_number": "{field}: {value} is not a whole number",
    "error.not_a_number": "{field}: {value} is not a number",
    "error.choose_one_of": "{field}: choose one of {choices}",
    "error.unknown_choice": "{field}: unknown {noun} {value}; choose one of {choices}",
    "error.choose_corpus": "{field}: choose a corpus to train on",
    "error.choose_dataset": "{field}: choose a labelled dataset",
    "error.choose_base_model": "{field}: choose a model to fine-tune (a run id or a local folder)",
    "error.corpus_missing": "{field}: corpus {id} does not exist",
    "error.dataset_missing": "{field}: dataset {id} does not exist",
    "error.corpus_missing_plain": "corpus {id} does not exist",
    "error.dataset_missing_plain": "dataset {id} does not exist",
    "error.run_missing": "run {id} does not exist",
    "error.file_not_found": "{file}: file not found",
    "error.file_empty": "{file}: file is empty",
    "error.unsupported_type": "{file}: unsupported file type '{type}' (expected {expected})",
    "error.no_column": "{file}: no {role} column {column}; {rest}",
    "error.no_column_named": "{file}: no column named {column}; available columns: {available}",
    "error.no_files": "no files given: upload at least one .txt, .jsonl, .csv, .tsv or .parquet file",
    "error.no_train_file": "no training file given: upload a .csv, .tsv, .jsonl, .parquet or labelled .txt file",
    "error.no_file": "no file given",
    "error.enter_text": "text: enter a text to classify",
}


def english(key: str, params: dict) -> str:
    """A keyed error's English message."""
    values = dict(params)
    if "why" in values:
        values["why"] = f": {values['why']}" if values["why"] else ""
    return MESSAGES[key].format(**values)


class UserError(ValueError):
    """An error the user can fix. With `key`, the message is made from `MESSAGES[key]` and `params`."""

    def __init__(self, message: str = "", *, key: str = "", **params):
        super().__init__(english(key, params) if key else message)
        self.key, self.params = key, params


class StudioError(UserError):
    """A user-facing error of a service: bad input or a request that cannot be met."""

    @classmethod
    def of(cls, error: Exception) -> "StudioError":
        """The same error (its key and parameters too, when it has them) as a StudioError."""
        if isinstance(error, UserError) and error.key:
            return cls(key=error.key, **error.params)
        return cls(str(error))


class NotFoundError(StudioError):
    """A run, corpus or dataset id that names nothing (HTTP routes answer it with 404)."""


def file_path(file) -> Path | None:
    """Gradio hands over str paths (UI) or FileData dicts (API); tests and the CLI pass Paths. None when empty."""
    if file is None or file == "":
        return None
    return Path(file["path"] if isinstance(file, dict) else file)

"""The errors a user can fix: bad input, or a request that cannot be met. Every front door shows their message.

Services raise `StudioError` with a message that says what and where (the field, the file, the line); the UI
and the API turn it into `gr.Error`, the CLI into a one-line message and exit code 2. `NotFoundError` is the
one HTTP routes answer with 404.
"""

from __future__ import annotations


class StudioError(ValueError):
    """A user-facing error: bad input or a request that cannot be met. The message says what and where."""


class NotFoundError(StudioError):
    """A run, corpus or dataset id that names nothing (HTTP routes answer it with 404)."""


def file_path(file):
    """Gradio hands over str paths (UI) or FileData dicts (API); tests and the CLI pass Paths. None when empty."""
    from pathlib import Path

    if file is None or file == "":
        return None
    return Path(file["path"] if isinstance(file, dict) else file)

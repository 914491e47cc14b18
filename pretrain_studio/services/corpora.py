"""Corpora: raw text in (ingest with cleaning filters), listing, a corpus's page."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..data.corpus import CorpusError, ingest_corpus, preview_rows
from ..errors import NotFoundError, StudioError, file_path
from ..registry import new_id
from ..workspace import Workspace

PREVIEW_CHARS = 1000  # a corpus preview shows the start of each document, never a whole book


class CorpusService:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.registry = workspace.registry

    def upload_corpus(self, files: list, name: str = "", txt_mode: str = "lines",
                      text_column: str | None = None, dedupe: bool = True, strip_gutenberg: bool = False,
                      drop_boilerplate_lines: bool = False, near_duplicates: bool = False) -> dict:
        """Ingest files as one corpus; nothing is stored when any file is bad. Exact duplicate documents are
        removed unless dedupe is false; the other cleaning filters are off unless asked for (data/corpus.py)."""
        paths = [file_path(f) for f in (files or [])]
        if not paths:
            raise StudioError(key="error.no_files")
        corpus_id = new_id("corpus")
        dest = self.workspace.corpus_dir(corpus_id)
        try:
            stats = ingest_corpus(paths, dest, txt_mode=txt_mode, text_column=text_column or None, dedupe=dedupe,
                                  strip_gutenberg=strip_gutenberg, drop_boilerplate_lines=drop_boilerplate_lines,
                                  near_duplicates=near_duplicates)
        except CorpusError as exc:
            raise StudioError.of(exc) from None
        name = (name or "").strip() or paths[0].name
        try:
            row = self.registry.add_corpus(corpus_id, name, str(dest), stats.to_dict())
        except Exception:
            shutil.rmtree(dest, ignore_errors=True)  # registry and disk must agree
            raise
        return corpus_summary(row)

    def list_corpora(self) -> list[dict]:
        return [corpus_summary(row) for row in self.registry.list_corpora()]

    def get_corpus(self, corpus_id: str) -> dict:
        row = self.registry.get_corpus(corpus_id)
        if row is None:
            raise NotFoundError(key="error.corpus_missing_plain", id=repr(corpus_id))
        return {**corpus_summary(row), "stats": row["stats"],
                "preview": preview_rows(row["path"], 10, max_chars=PREVIEW_CHARS)}

    def corpus_path(self, corpus_id: str) -> Path:
        return Path(self.registry.get_corpus(corpus_id)["path"])


def corpus_summary(row: dict) -> dict:
    stats = row["stats"]
    return {
        "corpus_id": row["id"], "name": row["name"], "documents": row["documents"],
        "characters": row["characters"], "words": row["words"],
        "empty_lines": stats.get("empty_lines", 0), "duplicate_documents": stats.get("duplicate_documents", 0),
        "encodings": stats.get("encodings", {}), "files": stats.get("files", []),
        "long_documents": stats.get("long_documents", 0),
        # What the cleaning filters removed; {} for a corpus ingested before they existed (issue 16).
        "removed": stats.get("removed", {}), "cleaning": stats.get("cleaning", {}),
    }

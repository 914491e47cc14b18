"""All-or-nothing saving of an ingested dataset: build it in a temporary sibling folder, then rename it into place.

Shared by corpus and labelled-dataset ingestion, so that a failed ingest never leaves a half-written folder
where a dataset is expected, and a successful one replaces an earlier dataset only once the new one is complete.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def publish(built: Path, dest: Path) -> None:
    """Move a finished dataset folder to dest, replacing an earlier one only once the new one is in place.
    Shared by corpus and labelled-dataset ingestion: all or nothing, never a half-written folder at dest."""
    if not dest.exists():
        built.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    dest.rename(old)
    try:
        built.rename(dest)
    except BaseException:
        old.rename(dest)  # put the previous one back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dataset(dest: Path, error: type[Exception], what: str) -> Iterator[Path]:
    """Build a dataset in a temporary sibling of `dest` (yielded; save it as `<work_dir>/dataset`), then publish it.
    All or nothing: on any failure nothing new is left at `dest`, and unexpected errors (disk full,
    permissions) become `error` saying "could not <what> at <dest>"."""
    work_dir: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A sibling of dest, so the final rename stays on one filesystem and is atomic.
        work_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        yield work_dir
        publish(work_dir / "dataset", dest)
    except error:
        raise
    except Exception as exc:
        raise error(f"could not {what} at {dest}: {exc}") from exc
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)

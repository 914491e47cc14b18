"""Checkpoints the studio can trust: marking them complete, and finding the newest one to resume from.

The Trainer writes `checkpoint-<step>/` folders. A process killed while one
was being written, or a disk that filled up, leaves a folder with missing or
truncated files; `get_last_checkpoint` would pick it and resuming would crash.
So once the Trainer has written every file of a checkpoint, `mark_complete`
flushes them to disk and writes a marker listing each file and its size (the
last thing written, atomically). A folder without a marker (a save that never
finished, or a `checkpoint-N` folder someone put there by hand) is never
resumed from. A marked one must still match its marker and have its trainer
state, optimizer and scheduler, and weights whose safetensors header and
tensors can be read.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")
MARKER = "studio_checkpoint.json"  # written last, by mark_complete: "every file of this checkpoint is on disk"


def mark_complete(checkpoint: str | Path, step: int) -> None:
    """Record that the checkpoint folder for `step` is complete: its files are flushed to disk first, so the
    marker never outlives a file it lists (a crash or a power cut between the two leaves no marker)."""
    checkpoint = Path(checkpoint)
    files = {}
    for path in sorted(p for p in checkpoint.rglob("*") if p.is_file() and not p.name.startswith(MARKER)):
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
        files[path.relative_to(checkpoint).as_posix()] = path.stat().st_size
    partial = checkpoint / f"{MARKER}.partial"
    with partial.open("w", encoding="utf-8") as fh:
        json.dump({"step": step, "files": files}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, checkpoint / MARKER)
    _fsync_folder(checkpoint)


def unmark(checkpoint: str | Path) -> None:
    """Before the Trainer writes into an existing checkpoint folder again: until it has finished, it is not complete."""
    (Path(checkpoint) / MARKER).unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is then as durable as they make it
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoints_newest_first(output_dir: str | Path) -> list[Path]:
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why this checkpoint cannot be resumed from, or None when it is complete."""
    problem = _marker_problem(checkpoint)
    if problem:
        return problem
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return "trainer_state.json is missing or unreadable"
    for name in ("optimizer.pt", "scheduler.pt"):
        path = checkpoint / name
        if not path.is_file() or path.stat().st_size == 0:
            return f"{name} is missing or empty"
    weights = [checkpoint / name for name in WEIGHT_FILES if (checkpoint / name).is_file()]
    if not weights:
        return "no model weights"
    from safetensors import safe_open

    try:
        for path in weights:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    handle.get_slice(key)  # reads the header entry; a truncated file fails here or below
            expected_end = _safetensors_data_end(path)
            if path.stat().st_size < expected_end:
                return f"{path.name} is truncated"
    except Exception as exc:  # any failure to read the weights means: do not resume from here
        return f"{path.name} is unreadable ({exc})"
    return None


def _marker_problem(checkpoint: Path) -> str | None:
    try:
        marker = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))
        step, files = int(marker["step"]), dict(marker["files"])
    except FileNotFoundError:
        return "no completion marker (its save did not finish, or the studio did not write it)"
    except (OSError, ValueError, KeyError, TypeError):
        return "its completion marker is unreadable"
    if step != checkpoint_step(checkpoint):
        return f"its completion marker belongs to checkpoint-{step}"
    for name, size in files.items():
        path = checkpoint / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or changed since the checkpoint was written"
    return None


def _safetensors_data_end(path: Path) -> int:
    """Byte offset where the tensor data of a safetensors file should end (from its JSON header)."""
    with path.open("rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + header_len + (max(ends) if ends else 0)


def newest_complete_checkpoint(output_dir: str | Path, log=None) -> Path | None:
    """The newest resumable checkpoint; damaged newer ones are skipped (and reported through `log`)."""
    for checkpoint in checkpoints_newest_first(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        if log:
            log(f"skipping {checkpoint.name}: {problem}")
    return None


def checkpoint_step(checkpoint: Path) -> int:
    return int(CHECKPOINT.match(checkpoint.name).group(1))

"""Why a run failed, in words a user can act on: the message the job runner records as the run's error.

Three failures have a known cause and a known remedy: a loss that stopped being finite (the run diverged),
memory that ran out (the batch does not fit), and a checkpoint or model that could not be written (usually a
full disk). Each gets a plain sentence with what to change. Anything else keeps its exception type and text.
The full traceback always goes to the run's log, not to this message.
"""

from __future__ import annotations

import errno
import shutil
import traceback
from pathlib import Path

from .checkpoints import checkpoint_problem, checkpoints_newest_first
from .reporting import NonFiniteLossError

OUT_OF_MEMORY_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")
DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EFBIG: "a file grew past the allowed size"}
DISK_TEXT = {"no space left on device": errno.ENOSPC, "os error 28": errno.ENOSPC,
             "disk quota exceeded": errno.EDQUOT, "os error 122": errno.EDQUOT,
             "file too large": errno.EFBIG, "os error 27": errno.EFBIG}
# torch.save's writer fails with "[enforce fail at inline_container.cc] unexpected pos"; safetensors with "I/O error".
WRITE_FAILURE_TEXT = ("inline_container", "file write failed", "iostream error", "i/o error")
CHECKPOINT_FRAMES = ("_save_checkpoint", "save_model")  # the Trainer writing checkpoint-N
MODEL_FRAMES = ("save_pretrained", "save_classifier", "save_file", "save")  # writing a model folder (or torch.save)


def explain_failure(exc: BaseException, cfg=None, run_dir: str | Path | None = None, device: str = "",
                    unfinished: Path | None = None) -> str:
    """The run's error message for `exc`. cfg (the run's config) fills in the remedies, run_dir locates the
    checkpoints, device (the resolved one, e.g. cuda:0) says where memory ran out, unfinished is the checkpoint
    the Trainer was writing when it failed (its folder already removed)."""
    chain = _chain(exc)
    diverged = next((e for e in chain if isinstance(e, NonFiniteLossError)), None)
    if diverged is not None:
        return _diverged(diverged, cfg)
    if any(_is_out_of_memory(e) for e in chain):
        return _out_of_memory(exc, cfg, device)
    saving = _saving_what(exc)
    disk = next((code for e in chain if (code := _disk_errno(e)) is not None), None)
    if disk is not None or (saving and any(_is_write_failure(e) for e in chain)):
        return _not_written(exc, saving, disk, Path(run_dir) if run_dir else None, unfinished)
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _diverged(exc: NonFiniteLossError, cfg) -> str:
    rate = ""
    if cfg is not None:  # learning_rate 0 means the automatic rate (by method and width, or by size preset)
        rate = (f" (now {cfg.learning_rate:g})" if cfg.learning_rate else
                " (now the automatic rate, in the run's log)")
    return (f"{exc}: the training diverged. Nothing from that step was recorded. Lower learning_rate{rate} "
            "or raise warmup_steps, then launch the run again.")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):  # CUDA (and other accelerators) out of memory
            return True
    except (ImportError, AttributeError):
        pass
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in OUT_OF_MEMORY_TEXT)


def _out_of_memory(exc: BaseException, cfg, device: str) -> str:
    where = f" on {device}" if device else ""
    advice = "Lower batch_size or max_seq_length"
    if cfg is not None:
        advice = f"Lower batch_size (now {cfg.batch_size}) or max_seq_length (now {cfg.max_seq_length})"
        if cfg.kind == "pretrain":
            advice += ("; raise gradient_accumulation_steps to keep the same effective batch, or choose a smaller "
                       "model_size")
        else:
            advice += ", or choose a smaller base model or a parameter-efficient method"
    return f"out of memory{where}: the model and one batch do not fit ({_first_line(exc)}). {advice}."


def _disk_errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return exc.errno
    text = str(exc).lower()
    return next((code for needle, code in DISK_TEXT.items() if needle in text), None)


def _is_write_failure(exc: BaseException) -> bool:
    """An I/O error, also as torch.save and safetensors report one (they carry no errno)."""
    return isinstance(exc, OSError) or any(text in str(exc).lower() for text in WRITE_FAILURE_TEXT)


def _saving_what(exc: BaseException) -> str | None:
    """'checkpoint' or 'model' when the exception was raised while the Trainer or we were writing one."""
    names = {frame.name for frame in traceback.extract_tb(exc.__traceback__)}
    if names & set(CHECKPOINT_FRAMES):  # checked first: a checkpoint save calls save_pretrained and torch.save
        return "checkpoint"
    return "model" if names & set(MODEL_FRAMES) else None


def _not_written(exc: BaseException, saving: str | None, disk: int | None, run_dir: Path | None,
                 unfinished: Path | None) -> str:
    cause = DISK_ERRNOS.get(disk, "the disk may be full")
    free = ""
    if run_dir is not None and run_dir.exists():
        free = f", {shutil.disk_usage(run_dir).free / 1e9:.1f} GB free in {run_dir}"
    detail = f"{cause} ({_first_line(exc)}{free})"
    if saving == "checkpoint" and run_dir is not None:
        # Resuming picks the newest complete checkpoint: say which one that will be.
        complete = next((c for c in checkpoints_newest_first(run_dir / "checkpoints") if checkpoint_problem(c) is None),
                        None)
        resume = (f"it continues from {complete.name}, its last complete checkpoint" if complete is not None
                  else "it has no complete checkpoint, so it starts again")
        what = f"{unfinished.name} (its unfinished folder was removed)" if unfinished is not None else "a checkpoint"
        return f"could not write {what}: {detail}. Free some space, then resume the run: {resume}."
    if saving == "model":
        return f"could not write the model: {detail}. Free some space, then resume the run."
    return f"{detail[0].upper()}{detail[1:]}. Free some space, then resume the run."

"""Inside a torchrun launch: which process this is, and what each rank may touch.

torchrun starts one process per device (training/launcher.py builds its command) and tells each, through the
environment, its global RANK, its LOCAL_RANK on the machine and the WORLD_SIZE. The Trainer then trains with
DDP. The studio's rules on top of that:

- Only global rank 0 writes to the registry (metrics, progress, status) and saves the model: the registry
  holds each metric once, not once per process. The other ranks log to `runs/<id>/ranks/rank-<N>.log`.
- Stop and Cancel are read from the registry by rank 0 and broadcast to every rank at each step, so all
  ranks leave the training loop at the same step (a rank that stopped alone would hang the others in their
  next all-reduce).
- Data preparation that writes files (the held-out split, the tokenizer, packed blocks) runs on rank 0
  first; the other ranks then find it made and only read it.
- A rank that fails writes `ranks/rank-<N>.error` (its message) before exiting, so that the launcher can
  say which rank failed and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

import torch

from .reporting import RunReporter

RANK_FOLDER = "ranks"


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """True inside a torchrun launch of more than one process."""
    return world_size() > 1


def is_main() -> bool:
    """Global rank 0 (or not distributed at all): the process that records and saves."""
    return rank() == 0


def rank_device(device: str) -> str:
    """The device this rank trains on: the GPU of its local rank, or the CPU."""
    return f"cuda:{local_rank()}" if device.startswith("cuda") and is_distributed() else device


def init_process_group(device: str) -> None:
    """Join the launch's process group: NCCL between GPUs, gloo between CPU processes. The Trainer (through
    accelerate) finds the group initialised and uses it."""
    if is_distributed() and not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank())
        torch.distributed.init_process_group(backend=backend)


def barrier() -> None:
    if is_distributed() and torch.distributed.is_initialized():
        torch.distributed.barrier()


@contextlib.contextmanager
def main_first():
    """Run the block on global rank 0 first, then on the other ranks. With the workspace on a shared
    filesystem (one machine, or a cluster's shared disk) they find rank 0's files made and only read them."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def broadcast_int(value: int) -> int:
    """Rank 0's `value`, on every rank."""
    if not (is_distributed() and torch.distributed.is_initialized()):
        return value
    tensor = torch.tensor([value], dtype=torch.long)
    if torch.distributed.get_backend() == "nccl":
        tensor = tensor.cuda()
    torch.distributed.broadcast(tensor, src=0)
    return int(tensor.item())


def broadcast_object(value):
    """Rank 0's `value` (any picklable object), on every rank."""
    if not (is_distributed() and torch.distributed.is_initialized()):
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def evaluate_before_training(trainer) -> None:
    """`trainer.evaluate()` before `trainer.train()` (the curves' point at step 0), keeping DDP.
    With transformers 5 and accelerate, evaluating first marks the model as prepared (for evaluation only),
    and `train()` then skips wrapping it in DistributedDataParallel: every rank would train its own copy,
    with nothing synchronised. Undoing the mark lets `train()` wrap it."""
    trainer.evaluate()
    if is_distributed():
        trainer.model.__dict__.pop("_is_accelerate_prepared", None)
        trainer.accelerator._models = [m for m in trainer.accelerator._models if m is not trainer.model]


class RankZeroReporter(RunReporter):
    """Global rank 0 of a launch: the registry reporter, with Stop and Cancel broadcast to the other ranks."""

    def stop_mode(self) -> int:
        return broadcast_int(super().stop_mode())


class FollowerReporter(RunReporter):
    """Ranks above 0: nothing goes to the registry; log lines go to the rank's own log file."""

    def __init__(self, registry, run_id: str, run_dir: Path):
        folder = Path(run_dir) / RANK_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(registry, run_id, folder / f"rank-{rank()}.log")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        pass

    def progress(self, step: int, max_steps: int | None = None) -> None:
        pass

    def rewind(self, step: int | None) -> None:
        pass

    def info(self, **values) -> None:
        pass

    def stop_mode(self) -> int:
        return broadcast_int(0)  # receives rank 0's answer


def reporter_for_rank(registry, run_id: str, run_dir: Path) -> RunReporter:
    if is_main():
        return RankZeroReporter(registry, run_id, Path(run_dir) / "train.log")
    return FollowerReporter(registry, run_id, run_dir)


def write_rank_file(run_dir: Path, suffix: str, data: dict) -> None:
    """`ranks/rank-<N>.<suffix>`: who this rank is (`json`) or why it failed (`error`)."""
    folder = Path(run_dir) / RANK_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    record = {"rank": rank(), "local_rank": local_rank(), "world_size": world_size(), "pid": os.getpid(),
              "host": socket.gethostname(), "time": time.time(), **data}
    (folder / f"rank-{rank()}.{suffix}").write_text(json.dumps(record), encoding="utf-8")


def read_rank_files(run_dir: Path, suffix: str) -> list[dict]:
    """Every rank's file of this kind, by rank."""
    records = []
    for path in sorted((Path(run_dir) / RANK_FOLDER).glob(f"rank-*.{suffix}")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: r.get("rank", 0))

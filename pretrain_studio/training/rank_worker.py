"""The process torchrun starts on every rank of a multi-device run.

    python -m pretrain_studio.training.rank_worker --workspace DIR (--run-id RUN | --config CONFIG.json)

With `--run-id` (what the job runner and the CLI on machine 0 pass) every rank trains that registered run.
With `--config` (machines other than 0, or a torchrun command the user launches themselves) global rank 0
registers the run from the config and sends its id to the other ranks. Each rank then trains through the
same `execute_run` as a single-device run; training/distributed.py says what each rank may write.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: models never come from a hub


class LaunchTerminated(RuntimeError):
    """torchrun sent SIGTERM: another rank failed, or the launch was ended (Cancel, the app going away)."""


def _terminated(signum, frame):
    from .launcher import TERMINATED

    raise LaunchTerminated(f"{TERMINATED}: another rank failed or the launch was ended (signal {signum})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id")
    which.add_argument("--config")
    parser.add_argument("--show-progress", action="store_true")
    args = parser.parse_args(argv)

    import datasets
    import transformers

    from ..config import load_config
    from ..workspace import Workspace
    from . import distributed
    from .execute import execute_run
    from .hardware import resolve_device
    from .intake import check_launchable, record_run

    if not (args.show_progress and distributed.is_main()):
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    workspace = Workspace(args.workspace)
    run = workspace.registry.get_run(args.run_id) if args.run_id else None
    cfg = load_config(args.config) if args.config else None
    device = (run["config"] if run else cfg.to_dict()).get("device", "auto")
    distributed.init_process_group(resolve_device(device) if device != "cpu" else "cpu")
    # Every rank takes rank 0's run id: machines other than 0 are started from the config and do not know it.
    run_id = run["id"] if run else None
    if run_id is None and distributed.is_main():
        from ..run_owner import this_process
        from ..run_states import RunStatus

        cfg = cfg.validate()
        check_launchable(workspace, cfg)
        run_id = record_run(workspace, cfg, resolve_device(cfg.device), status=RunStatus.RUNNING,
                            owner=this_process("torchrun"))
    run_id = distributed.broadcast_object(run_id if distributed.is_main() else None)
    run = workspace.registry.get_run(run_id)
    signal.signal(signal.SIGTERM, _terminated)
    distributed.write_rank_file(workspace.run_dir(run["id"]), "json", {})
    try:
        status = execute_run(workspace, run, show_progress=args.show_progress and distributed.is_main())
    finally:
        if distributed.is_distributed() and distributed.torch.distributed.is_initialized():
            distributed.torch.distributed.destroy_process_group()
    return 1 if status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())

"""One training process against several, through torchrun (gloo on the CPU, NCCL on GPUs).

    python bench/distributed_speed.py [--preset mini] [--steps 150] [--processes 2] [--repeats 2] [--device cpu]

Uploads WikiText-2 (test split) to a temporary workspace and pretrains the same run, launched through
the Studio's job runner as a user would, with `devices` 1 and with `devices` = `--processes`, in the order
1, N, N, 1, ... (`--repeats` pairs), so that a machine that speeds up or slows down over the minutes
counts for both alike. Each process takes `batch_size` sequences per step, so N processes train N times
the tokens per step. Reported per run: wall time, and the run's steady-state tokens per second (the
median of its own `tokens_per_second` rows after the first quarter of the steps, which counts the tokens
of all processes); then the median of N processes over 1 process. On the CPU the processes share the
machine's cores (torchrun's ranks get cores / N threads each), so the ratio says what DDP's
synchronisation costs there, not a speed-up; on N GPUs the ideal is N. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_support import WIKITEXT, require_shared_data, wait_for  # noqa: E402


def train(studio: Studio, corpus_id: str, preset: str, steps: int, devices: int, device: str) -> dict:
    start = time.time()
    run = studio.start_pretraining({"corpus_id": corpus_id, "model_size": preset, "max_steps": steps,
                                    "batch_size": 16, "max_seq_length": 128, "eval_steps": steps, "save_steps": steps,
                                    "logging_steps": 5, "devices": devices, "device": device, "seed": 1})
    status = wait_for(lambda: (s := studio.run_status(run["run_id"]))["status"] not in ("queued", "running") and s,
                      timeout=3600, interval=1.0, message="the run")
    if status["status"] != "completed":
        raise SystemExit(f"run {run['run_id']} ({devices} process(es)): {status['status']}: {status['error']}")
    rows = [r for r in studio.run_metrics(run["run_id"]) if r["name"] == "tokens_per_second" and r["step"] > steps // 4]
    return {"devices": devices, "run_id": run["run_id"], "wall_seconds": round(time.time() - start, 1),
            "tokens_per_second": round(statistics.median(r["value"] for r in rows)),
            "train_loss": next(r["value"] for r in reversed(studio.run_metrics(run["run_id"]))
                               if r["name"] == "train_loss")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs, in the order 1, N, N, 1, ...")
    parser.add_argument("--device", default="cpu", help="cpu, or auto / cuda for GPUs")
    args = parser.parse_args()
    wikitext = require_shared_data(*WIKITEXT)

    from pretrain_studio.studio import Studio

    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    studio = Studio(root / "workspace")
    try:
        corpus = studio.upload_corpus([wikitext], "wikitext-2 test")
        order = []
        for i in range(args.repeats):
            pair = [1, args.processes]
            order += pair if i % 2 == 0 else pair[::-1]
        results = [train(studio, corpus["corpus_id"], args.preset, args.steps, d, args.device) for d in order]
    finally:
        studio.close()
        shutil.rmtree(root, ignore_errors=True)

    one = [r["tokens_per_second"] for r in results if r["devices"] == 1]
    many = [r["tokens_per_second"] for r in results if r["devices"] == args.processes]
    ratio = statistics.median(many) / statistics.median(one)
    print(f"{args.preset} preset, {args.steps} steps, batch 16 x 128 tokens per process, device {args.device}")
    print(f"{'processes':>9} {'tokens/s':>9} {'wall s':>7} {'last train loss':>16}")
    for r in results:
        print(f"{r['devices']:>9} {r['tokens_per_second']:>9,} {r['wall_seconds']:>7} {r['train_loss']:>16.3f}")
    print(f"median tokens/s, {args.processes} processes over 1: {ratio:.2f}")
    print(json.dumps({"preset": args.preset, "steps": args.steps, "processes": args.processes, "device": args.device,
                      "ratio": round(ratio, 3), "runs": results}))


if __name__ == "__main__":
    main()

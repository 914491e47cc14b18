"""Pretraining throughput of BERT against ModernBERT (`architecture`) at the same size preset, on this machine.

    python bench/architecture_speed.py [--preset tiny] [--steps 60] [--seq-len 128] [--precisions fp32 bf16]

Each arm is the studio's own pretraining path as a user launches it (a registered corpus, the worker, the
Trainer), with the same corpus, tokenizer, batch, steps and seed; only `architecture` (and `precision`) differ.
Evaluation is left to the end (eval_steps above the steps), so the Trainer's train_runtime is training alone;
tokens per second is trained tokens over it. The default corpus is the app's sample corpus,
assets/sample_corpus.txt (in the repository). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "mini", "small", "medium", "base"])
    parser.add_argument("--data", nargs="+", type=Path, default=[REPO / "assets" / "sample_corpus.txt"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=4000)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "auto"])
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()  # --help answers here, before torch and transformers are imported

from pretrain_studio.studio import Studio  # noqa: E402


def run_arm(studio: Studio, corpus_id: str, a, architecture: str, precision: str) -> dict:
    run = studio.start_pretraining({
        "corpus_id": corpus_id, "architecture": architecture, "model_size": a.preset, "precision": precision,
        "vocab_size": a.vocab, "max_steps": a.steps, "batch_size": a.batch_size, "max_seq_length": a.seq_len,
        "warmup_steps": 5, "learning_rate": 2e-3, "eval_steps": a.steps + 1, "logging_steps": 10,
        "save_steps": a.steps + 1, "seed": 1, "device": a.device, "eval_fraction": 0.1})
    while (status := studio.run_status(run["run_id"]))["status"] in ("queued", "running"):
        time.sleep(0.5)
    if status["status"] != "completed":
        raise SystemExit(f"{architecture} {precision}: {status['status']}: {status.get('error')}")
    info = status["info"]
    losses = [m["value"] for m in studio.run_metrics(run["run_id"]) if m["name"] == "eval_loss"]
    return {"architecture": architecture, "precision": info["precision"], "parameters": info["parameters"],
            "train_seconds": info["train_seconds"], "trained_tokens": info["trained_tokens"],
            "tokens_per_second": info["trained_tokens"] / info["train_seconds"], "final_eval_loss": losses[-1],
            "no_context_loss": info["no_context_loss"]}


def main(a) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp) / "workspace")
        try:
            corpus = studio.upload_corpus(a.data, "bench corpus")
            # A first short run trains the tokenizer and packs the blocks into the cache, outside the timings.
            run_arm(studio, corpus["corpus_id"], argparse.Namespace(**{**vars(a), "steps": 2}), "bert", "fp32")
            rows = [run_arm(studio, corpus["corpus_id"], a, arch, precision)
                    for precision in a.precisions for arch in ("bert", "modernbert")]
        finally:
            studio.close()
    print(f"\n{a.preset} preset, {a.steps} steps of {a.batch_size} x {a.seq_len} tokens on {a.device}")
    print(f"{'architecture':<12} {'precision':<9} {'params':>8} {'tokens/s':>10} {'eval loss':>9}")
    for r in rows:
        print(f"{r['architecture']:<12} {r['precision']:<9} {r['parameters'] / 1e6:>7.2f}M "
              f"{r['tokens_per_second']:>10.0f} {r['final_eval_loss']:>9.3f}")
    print(json.dumps({"preset": a.preset, "steps": a.steps, "rows": rows}))


if __name__ == "__main__":
    main(ARGS)

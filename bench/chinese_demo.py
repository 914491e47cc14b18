"""Chinese end to end: pretrain a tiny BERT on Hongloumeng, fill masks, fine-tune on ChnSentiCorp, print the figures.

    python bench/chinese_demo.py [--hlm-lines 1200] [--pretrain-steps 200] [--finetune-steps 80]
                                 [--base hongloumeng|reviews] [--chinese-whole-word-mask]

Runs the studio's own engine in a temporary workspace (the path the app, API and CLI use), with the very
slices and settings of tests/training/test_chinese.py unless told otherwise:

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
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "training"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import wait_for  # noqa: E402
from test_chinese import (CHNSENTICORP, FINETUNE_RUN, HLM_RUN, chnsenticorp_slices,  # noqa: E402
                          hongloumeng_slice)

from pretrain_studio.studio import Studio  # noqa: E402

SENTENCES = ["贾宝[MASK]道：“你们不知道。”", "林黛[MASK]听了，便笑道：“我知道了。”", "王熙[MASK]笑道：“老祖宗来了。”",
             "却说宝玉回到房[MASK]，袭人迎了出来。"]
REVIEW = "房间很干净，服务也很热情，早餐丰富，下次还会再来。"


def run_to_end(studio: Studio, run_id: str) -> dict:
    status = wait_for(lambda: (s := studio.run_status(run_id))["status"] not in ("queued", "running") and s,
                      timeout=3600, interval=1, message=run_id)
    if status["status"] != "completed":
        raise SystemExit(f"{run_id} {status['status']}: {status['error']}")
    return status


def reviews_corpus(folder: Path, skip: int) -> Path:
    """ChnSentiCorp reviews other than the fine-tuning slice's (the first `skip` of each label), one a line."""
    with CHNSENTICORP.open(encoding="utf-8", newline="") as fh:
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

    import datasets

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

"""Every fine-tuning method learns, and ends on the checkpoint it says it ends on.

A tiny model is pretrained here with MLM on in-repository English text (the first chapters of *Moby Dick*
and of *Persuasion*), then each method fine-tunes it on "who wrote it?" (tests/data/authors_*.csv: Austen,
Shakespeare and Whitman, 80 / 20 / 20 texts each, styles far apart). After a short run each method's test
accuracy must be far above the majority baseline (1/3 on the balanced test split).

The recipe is explicit, not the product's defaults (those are tuned separately): mean pooling (a model
pretrained with MLM alone has an untrained [CLS], so a classifier on it trains slowly and often stays at the
majority class), a random head (so what is measured is the method's own learning, not a linear probe's),
and learning rates sized for a 128-wide model.

"The final model is the best checkpoint" is checked against what the run recorded: the saved model, scored
here on the validation split, reproduces the best recorded eval accuracy (AdaLoRA: the last step's, since
its pruned ranks no longer fit an earlier checkpoint)."""

import csv

import pytest
from conftest import REPO, wait_for

from pretrain_studio.config import METHODS
from pretrain_studio.model_store import load_classifier, predict_proba
from pretrain_studio.studio import Studio

DATA = REPO / "tests" / "data"
BASE_RUN = {"model_size": "tiny", "vocab_size": 2000, "max_steps": 150, "batch_size": 32, "max_seq_length": 64,
            "learning_rate": 2e-3, "warmup_steps": 20, "eval_steps": 100, "logging_steps": 50, "save_steps": 1000,
            "seed": 1}
RECIPE = {"max_steps": 200, "batch_size": 16, "max_seq_length": 64, "eval_steps": 40, "logging_steps": 10,
          "warmup_steps": 0.1, "pooling": "mean", "head_init": "random", "early_stopping_metric": "eval_accuracy",
          "seed": 0}
# Measured with this recipe, seeds 0 and 1, on a 300-step base: test accuracy 0.72 to 0.93 for every method
# (AdaLoRA lowest; 150 fine-tuning steps gave 0.67 to 0.98); on this 150-step base (half the setup time), seed 0:
# 0.72 (LoRA) to 0.97. Higher rates were worse: LoRA at 1e-2 stayed at the majority class, adapters at 1e-2
# reached 0.57.
LEARNING_RATES = {"full": 1e-3, "top_layers": 2e-3, "lora": 5e-3, "adalora": 2e-2, "ia3": 3e-2, "adapter": 5e-3}
MIN_TEST_ACCURACY = 0.6  # majority: 1/3


def ended(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """The tiny base, then one run per method, all queued at once (they train one after another)."""
    studio = Studio(tmp_path_factory.mktemp("learn") / "workspace")
    corpus = studio.upload_corpus([DATA / "moby_dick_crlf.txt", REPO / "assets" / "sample_corpus.txt"], "english")
    base = studio.start_pretraining({**BASE_RUN, "corpus_id": corpus["corpus_id"]})["run_id"]
    done = wait_for(lambda: ended(studio, base), timeout=600, message="the base pretraining run")
    assert done["status"] == "completed", done["error"]
    dataset = studio.upload_dataset("authors", DATA / "authors_train.csv", "text", "label",
                                    validation_file=DATA / "authors_dev.csv", test_file=DATA / "authors_test.csv")
    launched = {m: studio.start_finetuning({**RECIPE, "dataset_id": dataset["dataset_id"], "base_model": base,
                                            "method": m, "learning_rate": LEARNING_RATES[m]})["run_id"]
                for m in METHODS}
    runs = {m: wait_for(lambda: ended(studio, run_id), timeout=900, message=f"the {m} run")
            for m, run_id in launched.items()}
    yield studio, runs
    studio.close()


def eval_accuracy(studio, run_id) -> dict[int, float]:
    return {m["step"]: m["value"] for m in studio.run_metrics(run_id) if m["name"] == "eval_accuracy"}


def validation_accuracy(folder, max_length: int) -> float:
    """The saved model, loaded as a user loads it, scored on the validation split as the run evaluates it."""
    with open(DATA / "authors_dev.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    tokenizer, model, _ = load_classifier(folder)
    predicted = predict_proba(tokenizer, model, [r["text"] for r in rows], max_length=max_length).argmax(1)
    names = [model.config.id2label[int(i)] for i in predicted]
    return sum(name == r["label"] for name, r in zip(names, rows)) / len(rows)


@pytest.mark.parametrize("method", METHODS)
def test_method_beats_the_majority_baseline_by_a_clear_margin(learned, method):
    studio, runs = learned
    status = runs[method]
    assert status["status"] == "completed", status["error"]
    majority = status["baselines"]["majority"]["accuracy"]
    assert majority == pytest.approx(1 / 3)
    accuracy = status["test_metrics"]["accuracy"]
    assert accuracy >= MIN_TEST_ACCURACY, (method, accuracy, majority)
    # It learned during the run: the untrained classifier (step 0) scored far lower on the validation split.
    curve = eval_accuracy(studio, status["run_id"])
    assert max(curve.values()) >= curve[0] + 0.25, curve


@pytest.mark.parametrize("method", [m for m in METHODS if m != "adalora"])
def test_final_model_is_the_best_recorded_checkpoint(learned, method):
    studio, runs = learned
    status = runs[method]
    curve = {step: value for step, value in eval_accuracy(studio, status["run_id"]).items() if step > 0}
    best = max(curve.values())
    first_best = min(step for step, value in curve.items() if value == best)  # a tie keeps the earlier one
    info = status["info"]
    assert info["best_metric"] == pytest.approx(best, abs=1e-9)
    assert info["best_checkpoint"].endswith(f"checkpoint-{first_best}")
    folder = studio.workspace.run_dir(status["run_id"]) / "model"
    # One validation text of 60 may flip between the Trainer's batches and ours (padding), no more.
    assert validation_accuracy(folder, RECIPE["max_seq_length"]) == pytest.approx(best, abs=1 / 60 + 1e-9)


def test_adalora_final_model_is_the_last_steps(learned):
    studio, runs = learned
    status = runs["adalora"]
    curve = eval_accuracy(studio, status["run_id"])
    last = curve[RECIPE["max_steps"]]
    folder = studio.workspace.run_dir(status["run_id"]) / "model"
    assert validation_accuracy(folder, RECIPE["max_seq_length"]) == pytest.approx(last, abs=1 / 60 + 1e-9)

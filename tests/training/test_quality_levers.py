"""What makes the model a user gets better, and the honest numbers beside it: mean pooling, LP-FT, the verdict,
the no-context line, the downstream check and the time budget.

Runs use the workspace's own embedded defaults (the sample corpus and the sample "who wrote it?" set), as the
quick start does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import wait_for
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForMaskedLM)

from pretrain_studio.auto_defaults import auto_epochs, auto_learning_rate
from pretrain_studio.config import FinetuneConfig
from pretrain_studio.pooling import apply_pooling
from pretrain_studio.training.mlm_data import no_context_loss
from pretrain_studio.training.verdict import fine_tuning_verdict

PRETRAIN = {"model_size": "tiny", "vocab_size": 1500, "batch_size": 16, "max_seq_length": 64, "learning_rate": 2e-3,
            "warmup_steps": 5, "eval_steps": 10, "logging_steps": 5, "save_steps": 1000, "seed": 1}


def finished(studio, run_id: str, timeout: float = 600) -> dict:
    return wait_for(lambda: (lambda r: r if r["status"] not in ("queued", "running") else None)(
        studio.registry.get_run(run_id)), timeout=timeout, message=f"run {run_id} to end")


def sample_ids(studio) -> tuple[str, str]:
    corpus = next(c for c in studio.list_corpora() if c["name"].startswith("Sample"))["corpus_id"]
    dataset = next(d for d in studio.list_datasets() if d["name"].startswith("Sample"))["dataset_id"]
    return corpus, dataset


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    """The quick start with a downstream check: a short pretraining of the sample corpus checked on the sample set."""
    from pretrain_studio.studio import Studio

    studio = Studio(tmp_path_factory.mktemp("quality") / "workspace")
    corpus, dataset = sample_ids(studio)
    run = studio.start_pretraining({**PRETRAIN, "corpus_id": corpus, "max_steps": 40, "downstream_datasets": [dataset],
                                    "downstream_eval_steps": 20})
    pretrained = finished(studio, run["run_id"])
    yield studio, dataset, pretrained
    studio.close()


# --- mean pooling -----------------------------------------------------------------------------

def tiny_classifier(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "short", "text", "much", "longer", "with", "words"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=3)
    return tokenizer, AutoModelForSequenceClassification.from_config(config).eval()


def test_mean_pooling_ignores_padding_and_keeps_the_standard_weights(tmp_path):
    tokenizer, model = tiny_classifier(tmp_path)
    keys = set(model.state_dict())
    alone = tokenizer(["a short text"], return_tensors="pt")
    padded = tokenizer(["a short text", "a much longer text with words words words"], padding=True,
                       return_tensors="pt")
    with torch.no_grad():
        cls_alone = model(**alone).logits[0]
        apply_pooling(model, "mean")
        mean_alone, mean_padded = model(**alone).logits[0], model(**padded).logits[0]
    assert set(model.state_dict()) == keys  # the same parameters: checkpoints and peft keep their layout
    torch.testing.assert_close(mean_alone, mean_padded, atol=1e-5, rtol=0)  # padding is left out of the mean
    assert not torch.allclose(mean_alone, cls_alone, atol=1e-4)  # and it is not [CLS] any more
    with pytest.raises(ValueError, match="pooling must be one of"):
        apply_pooling(model, "max")


# --- defaults by size, the verdict ------------------------------------------------------------------

def test_auto_learning_rate_grows_as_the_model_narrows_and_auto_epochs_follow_the_data():
    assert auto_learning_rate("full", 768) == pytest.approx(5e-5)
    assert auto_learning_rate("full", 384) == pytest.approx(5e-5 * 2 ** 1.5)
    assert auto_learning_rate("full", 128) == pytest.approx(5e-5 * 6 ** 1.5)
    assert auto_learning_rate("ia3", 128) == pytest.approx(1e-2)  # capped
    assert FinetuneConfig(learning_rate=3e-4).effective_learning_rate(128) == 3e-4  # a set rate is kept
    assert auto_epochs(384, 16) == 10 and auto_epochs(6920, 32) == 3 and auto_epochs(2000, 16) == 3


@pytest.mark.parametrize("score, expected", [(0.34, (False, False)), (0.70, (True, False)), (0.90, (True, True))])
def test_verdict_names_what_the_run_did_not_beat(score, expected):
    verdict = fine_tuning_verdict(score, 0.333, 0.75, method="lora", learning_rate=5e-4, steps=72, hidden_size=128,
                                  pooling="cls", head_init="random")
    assert (verdict["above_majority"], verdict["above_linear_probe"]) == expected
    if expected == (True, True):
        assert verdict["advice"] == ""
    else:
        assert "72 steps" in verdict["advice"] and "full fine-tuning" in verdict["advice"]
        assert "pooling=mean" in verdict["advice"] and "head_init=linear_probe" in verdict["advice"]


# --- the no-context line ------------------------------------------------------------------------------

def test_no_context_loss_is_the_unigram_cross_entropy_of_the_masked_tokens():
    import datasets

    class Vocab:  # what no_context_loss asks of a tokenizer
        all_special_ids = [0]

        def __len__(self):
            return 4

    train = datasets.Dataset.from_dict({"input_ids": [[0, 1, 1, 1], [0, 2, 1, 3]]})  # id 0 is special
    held_out = datasets.Dataset.from_dict({"labels": [[-100, 1, -100, 2], [3, -100, -100, -100]]})
    counts = np.array([0, 4, 1, 1])  # add-one smoothing over the 4 ids
    p = (counts + 1) / (counts.sum() + 4)
    expected = -np.mean(np.log([p[1], p[2], p[3]]))
    assert no_context_loss(train, held_out, Vocab()) == pytest.approx(expected)


# --- a pretraining run with a downstream check --------------------------------------------------------

def test_a_pretraining_run_records_its_no_context_line_and_downstream_curve(sample_runs):
    studio, dataset, run = sample_runs
    assert run["status"] == "completed", run["error"]
    info = run["info"]
    # A tiny model's eval loss starts far above the line (random logits over the vocabulary) and falls.
    evals = [m["value"] for m in studio.registry.metrics_since(run["id"]) if m["name"] == "eval_loss"]
    assert 3 < info["no_context_loss"] < evals[0] and evals[-1] < evals[0]
    rows = [m for m in studio.registry.metrics_since(run["id"]) if m["name"].startswith("downstream_")]
    steps = sorted({m["step"] for m in rows if m["name"] == f"downstream_accuracy/{dataset}"})
    assert steps == [0, 20, 40]  # step 0 ("no pretraining"), every downstream_eval_steps, the end
    assert {m["name"] for m in rows} == {f"downstream_accuracy/{dataset}", f"downstream_probe/{dataset}"}
    assert all(0 <= m["value"] <= 1 for m in rows)
    summary = info["downstream"][dataset]
    accuracy = {m["step"]: m["value"] for m in rows if m["name"] == f"downstream_accuracy/{dataset}"}
    assert summary["start"] == accuracy[0] and summary["final"] == accuracy[40]
    assert summary["best"] == max(accuracy.values())
    assert summary["paid_off"] == (accuracy[40] > accuracy[0] + 0.01)
    assert info["downstream_seconds"] > 0
    # Three classes of 16 validation texts: the brief fine-tune from the probe beats chance from step 0 on.
    assert summary["start"] > 0.45


def test_an_unknown_downstream_dataset_is_refused_naming_the_field(sample_runs):
    from pretrain_studio.errors import StudioError

    studio, _, run = sample_runs
    with pytest.raises(StudioError, match="downstream_datasets: dataset 'nope' does not exist"):
        studio.start_pretraining({**PRETRAIN, "corpus_id": run["corpus_id"], "downstream_datasets": ["nope"]})


# --- fine-tuning with the defaults: mean pooling and LP-FT ---------------------------------------------

def test_default_fine_tuning_of_the_quick_start_beats_both_baselines(sample_runs):
    """The quick start's second step with every default (the learning rate, epochs and pooling chosen for this
    small model), from the short pretraining above: clearly above the majority class and the linear probe."""
    studio, dataset, pretrained = sample_runs
    run = finished(studio, studio.start_finetuning({"dataset_id": dataset, "base_model": pretrained["id"],
                                                    "max_steps": 120, "eval_steps": 40})["run_id"])
    assert run["status"] == "completed", run["error"]
    info = run["info"]
    assert run["config"]["method"] == "full" and run["config"]["pooling"] == "mean"
    assert info["learning_rate"] == pytest.approx(auto_learning_rate("full", 128))
    metrics = studio.registry.metrics_since(run["id"])
    step0 = next(m["value"] for m in metrics if m["name"] == "eval_accuracy" and m["step"] == 0)
    assert step0 > 0.5  # LP-FT: the head starts from the probe, far above a random head's third
    verdict = info["verdict"]
    assert verdict == {"above_majority": True, "above_linear_probe": True, "advice": ""}, (
        info["test_metrics"]["accuracy"], info["baselines"]["linear_probe"]["accuracy"])


# --- the time budget -------------------------------------------------------------------------------------

def test_a_time_budget_ends_the_run_on_time_with_the_rate_annealed(sample_runs):
    studio, _, pretrained = sample_runs
    run = finished(studio, studio.start_pretraining(
        {**PRETRAIN, "corpus_id": pretrained["corpus_id"], "max_steps": 0, "num_epochs": 0, "learning_rate": 0,
         "time_budget_minutes": 0.15, "logging_steps": 2, "eval_steps": 50})["run_id"])
    assert run["status"] == "completed", run["error"]
    info = run["info"]
    assert info["ended_by"] == "the time budget" and info["time_budget_seconds"] == 9
    assert 9 <= info["budget_elapsed_seconds"] < 9 + 10
    rates = [m["value"] for m in studio.registry.metrics_since(run["id"]) if m["name"] == "learning_rate"]
    peak = max(rates)
    assert info["learning_rate"] == 1e-3  # learning_rate 0: the measured default for a tiny model from scratch
    assert 0.5e-3 < peak <= 1e-3 and rates[-1] < 0.35 * peak  # decayed with the clock, towards 0
    assert rates.index(peak) < len(rates) // 2
    # The saved model is a standard folder, evaluated at its last step.
    last = max(m["step"] for m in studio.registry.metrics_since(run["id"]) if m["name"] == "eval_loss")
    assert last == run["step"] > 0
    model = AutoModelForMaskedLM.from_pretrained(studio.workspace.run_dir(run["id"]) / "model")
    assert model.config.model_type == "modernbert"  # the default architecture
    AutoTokenizer.from_pretrained(studio.workspace.run_dir(run["id"]) / "model")
    assert math.isfinite(info["no_context_loss"])


def test_max_steps_bounds_a_budgeted_run_and_it_says_so(sample_runs):
    studio, _, pretrained = sample_runs
    run = finished(studio, studio.start_pretraining(
        {**PRETRAIN, "corpus_id": pretrained["corpus_id"], "max_steps": 6, "time_budget_minutes": 5})["run_id"])
    assert run["status"] == "completed" and run["step"] == 6
    assert run["info"]["ended_by"].startswith("max_steps")


def test_a_fine_tuning_time_budget_ends_on_time_and_keeps_the_best_checkpoint(sample_runs):
    """Fine-tuning by the clock alone (max_steps and num_epochs 0): the rate warms up and decays with elapsed time,
    the step the budget ends on is evaluated, and the model is the best evaluated checkpoint, scored as usual."""
    studio, dataset, pretrained = sample_runs
    run = finished(studio, studio.start_finetuning({"dataset_id": dataset, "base_model": pretrained["id"],
                                                    "time_budget_minutes": 0.1, "eval_steps": 20,
                                                    "logging_steps": 2})["run_id"])
    assert run["status"] == "completed", run["error"]
    info = run["info"]
    assert info["ended_by"] == "the time budget" and info["time_budget_seconds"] == 6
    assert 6 <= info["budget_elapsed_seconds"] < 6 + 10
    metrics = studio.registry.metrics_since(run["id"])
    rates = [m["value"] for m in metrics if m["name"] == "learning_rate"]
    assert max(rates) <= info["learning_rate"] and rates[-1] < 0.35 * max(rates)
    evaluated = {m["step"]: m["value"] for m in metrics if m["name"] == "eval_f1"}
    assert max(evaluated) == run["step"]  # the step the budget ended on was evaluated (and could be the best)
    best = max(v for s, v in evaluated.items() if s > 0)
    assert info["best_metric"] == pytest.approx(best)
    # ... and its checkpoint is the model: every evaluated step, the budget's last one too, was saved.
    assert info["best_checkpoint"].endswith(f"checkpoint-{min(s for s, v in evaluated.items() if s > 0 and v == best)}")
    assert info["test_metrics"]["accuracy"] > info["baselines"]["majority"]["accuracy"]


def test_a_fine_tuning_budget_with_max_steps_ends_at_the_steps_and_adalora_is_refused(sample_runs):
    from pretrain_studio.errors import StudioError

    studio, dataset, pretrained = sample_runs
    run = finished(studio, studio.start_finetuning({"dataset_id": dataset, "base_model": pretrained["id"],
                                                    "max_steps": 8, "eval_steps": 4, "time_budget_minutes": 5})["run_id"])
    assert run["status"] == "completed" and run["step"] == 8
    assert run["info"]["ended_by"].startswith("max_steps")
    with pytest.raises(StudioError, match="time_budget_minutes: adalora prunes its ranks"):
        studio.start_finetuning({"dataset_id": dataset, "base_model": pretrained["id"], "method": "adalora",
                                 "time_budget_minutes": 1})

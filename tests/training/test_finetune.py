"""Fine-tuning through the real Trainer, every method, on a tiny model pretrained here with MLM (so its
classifier starts with a fresh, untrained pooler: the trap the saved artefacts must survive).

For each method: the run completes, scores the held-out split beside the two baselines, saves the method's
standard layout, and the saved artefacts reload (in the app, and with plain transformers + peft) to identical
logits whatever the random seed, reproducing the recorded score exactly."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import AUTHORS, TINY_RUN, wait_for
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pretrain_studio.config import METHODS
from pretrain_studio.data.labelled import load_labelled
from pretrain_studio.model_store import load_classifier, predict_proba
from pretrain_studio.studio import Studio, StudioError

LABELS = {"Austen", "Shakespeare", "Whitman"}
FINETUNE_RUN = {"max_steps": 12, "eval_steps": 4, "logging_steps": 2, "batch_size": 16, "max_seq_length": 48,
                "seed": 3, "lora_r": 4, "adapter_size": 16, "top_layers": 1, "adalora_init_r": 6,
                "adalora_target_r": 2}


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


@pytest.fixture(scope="module")
def setup(tmp_path_factory, wikitext_slice):
    root = tmp_path_factory.mktemp("finetune")
    studio = Studio(root / "workspace")
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    # A BERT base: this module checks BERT's pooler swap and model card (tests/training/test_modernbert.py does the
    # same for ModernBERT, the default architecture).
    base = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 20,
                                     "architecture": "bert"})
    wait_for(lambda: finished(studio, base["run_id"]), timeout=300, message="the base pretraining run")
    # "Who wrote it?": text,label CSVs, 3 classes (Austen, Shakespeare, Whitman), 240 train / 60 dev rows.
    dataset = studio.upload_dataset("authors", AUTHORS["train"], validation_file=AUTHORS["dev"])
    yield studio, base["run_id"], dataset
    studio.close()


@pytest.fixture(scope="module")
def runs(setup):
    """One run per method, all queued at once (they run one after another)."""
    studio, base, dataset = setup
    launched = {m: studio.start_finetuning({**FINETUNE_RUN, "dataset_id": dataset["dataset_id"], "base_model": base,
                                            "method": m})["run_id"] for m in METHODS}
    return {m: wait_for(lambda: finished(studio, run_id), timeout=600, message=f"{m} run")
            for m, run_id in launched.items()}


@torch.no_grad()
def model_card_probabilities(model, tokenizer, texts):
    """A mean-pooled classifier used without this package, as the README and the exported model card say."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=FINETUNE_RUN["max_seq_length"],
                      return_tensors="pt")
    out = model.bert(**batch)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
    logits = model.classifier(model.bert.pooler(mean.unsqueeze(1)))  # the pooler reads position 0
    return logits.softmax(-1).numpy()  # logits_of gives probabilities


def logits_of(model, tokenizer, texts):
    """Class probabilities, texts cut where the run cut them (the scores depend on it)."""
    return predict_proba(tokenizer, model, texts, max_length=FINETUNE_RUN["max_seq_length"]).numpy()


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_scores_and_reloads_to_identical_logits(setup, runs, method):
    studio, _, _ = setup
    status = runs[method]
    assert status["status"] == "completed", status["error"]
    info, metrics = status["info"], status["test_metrics"]
    assert status["step"] == FINETUNE_RUN["max_steps"]
    assert 0 < info["trainable_parameters"] <= info["total_parameters"]
    if method != "full":
        assert info["trainable_share"] < 1.0
    assert set(status["baselines"]) == {"majority", "linear_probe"}
    names = {m["name"] for m in studio.run_metrics(status["run_id"])}
    assert {"train_loss", "eval_loss", "eval_accuracy", "eval_f1"} <= names
    assert info["artifact_bytes"] > 0

    folder = studio.workspace.run_dir(status["run_id"]) / "model"
    data = load_labelled(studio.registry.get_dataset(status["dataset_id"])["path"])[info["score_split"]]
    texts = list(data["text"])
    torch.manual_seed(0)
    tokenizer, first, _ = load_classifier(folder)
    torch.manual_seed(1)  # anything left unsaved (a fresh pooler, a fresh head) would now come out different
    _, second, _ = load_classifier(folder)
    a, b = logits_of(first, tokenizer, texts), logits_of(second, tokenizer, texts)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # The saved model is the one that was scored: the recorded accuracy is reproduced exactly.
    assert (a.argmax(1) == np.asarray(data["label"])).mean() == pytest.approx(metrics["accuracy"], abs=1e-9)


@pytest.mark.parametrize("method", ["full", "top_layers", "lora", "adalora", "ia3"])
def test_artefacts_load_with_plain_transformers_and_peft(setup, runs, method):
    from peft import PeftModel

    studio, _, _ = setup
    folder = studio.workspace.run_dir(runs[method]["run_id"]) / "model"
    described = json.loads((folder / "studio_model.json").read_text())
    id2label = {int(k): v for k, v in described["id2label"].items()}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "adapter_config.json").exists():
        torch.manual_seed(123)
        base = AutoModelForSequenceClassification.from_pretrained(described["base_model"], num_labels=len(id2label),
                                                                  id2label=id2label)
        plain = PeftModel.from_pretrained(base, folder).eval()
    else:
        assert method in ("full", "top_layers")
        plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    _, ours, _ = load_classifier(folder)
    texts = ["a gripping , beautifully made film", "dull and lifeless from start to finish"]
    if described.get("pooling") == "mean":  # the default: the exported model card's lines, in plain transformers
        expected = model_card_probabilities(plain, tokenizer, texts)
        # ... and reading [CLS] instead would give other answers: the pooling is not a no-op. Compared as
        # log-probabilities: a confident head saturates the softmax, so probabilities of both readings can
        # agree to 1e-4 while the small classes differ by a third.
        assert not np.allclose(np.log(logits_of(plain, tokenizer, texts)), np.log(expected), atol=1e-2)
    else:
        expected = logits_of(plain, tokenizer, texts)
    np.testing.assert_allclose(expected, logits_of(ours, tokenizer, texts), atol=1e-5)


def test_methods_train_what_they_promise(runs):
    share = {m: runs[m]["info"]["trainable_share"] for m in METHODS}
    assert share["full"] == 1.0
    assert share["ia3"] < share["lora"] < share["full"]
    assert share["adapter"] < share["full"] and share["top_layers"] < share["full"]
    assert runs["lora"]["info"]["artifact_bytes"] < runs["full"]["info"]["artifact_bytes"] / 2


def test_classify_and_predict_file(setup, runs, tmp_path):
    studio, _, _ = setup
    run_id = runs["lora"]["run_id"]
    answer = studio.classify(run_id, "It is a truth universally acknowledged, that a single man must be in want of a wife.")
    assert answer["label"] in LABELS
    assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    labelled = tmp_path / "check.csv"
    rows = [("Elinor was obliged to confess her sister's behaviour.", "Austen"), ("To be, or not to be", "Shakespeare"),
            ("I celebrate myself, and sing myself", "Whitman")]
    labelled.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in rows))
    result = studio.predict_file(run_id, labelled)
    assert result["rows"] == 3
    with open(result["file"], newline="", encoding="utf-8") as fh:
        written = list(csv.DictReader(fh))
    assert {"text", "label", "predicted"} | {f"p_{label}" for label in LABELS} <= set(written[0])
    # Each row's prediction is the model's answer for that text, and the metrics and the misclassified rows
    # are counted from those predictions.
    assert [r["predicted"] for r in written] == [studio.classify(run_id, text)["label"] for text, _ in rows]
    wrong = [r for r in written if r["predicted"] != r["label"]]
    assert result["metrics"]["accuracy"] == pytest.approx(1 - len(wrong) / 3)
    assert [r["text"] for r in result["misclassified"]] == [r["text"] for r in wrong]


def test_finetuning_a_finetuned_lora_run(setup, runs):
    studio, _, dataset = setup
    child = studio.start_finetuning({**FINETUNE_RUN, "max_steps": 4, "dataset_id": dataset["dataset_id"],
                                     "base_model": runs["lora"]["run_id"], "method": "full"})
    status = wait_for(lambda: finished(studio, child["run_id"]), timeout=300, message="child run")
    assert status["status"] == "completed", status["error"]
    assert status["parent_id"] == runs["lora"]["run_id"]


@pytest.mark.parametrize("values, field_name", [
    ({"method": "prefix"}, "method"),
    ({"lora_r": 0, "method": "lora"}, "lora_r"),
    ({"lora_target_modules": "nonexistent_proj", "method": "lora"}, "lora_target_modules"),
    ({"learning_rate": -1}, "learning_rate"),
    ({"top_layers": 0, "method": "top_layers"}, "top_layers"),
    ({"max_seq_length": 100000}, "max_seq_length"),
])
def test_bad_finetuning_settings_are_refused_naming_the_field(setup, values, field_name):
    studio, base, dataset = setup
    before = len(studio.list_runs())
    config = {**FINETUNE_RUN, "dataset_id": dataset["dataset_id"], "base_model": base, **values}
    with pytest.raises(StudioError, match=field_name):
        studio.start_finetuning(config)
    assert len(studio.list_runs()) == before


def test_export_with_merged_model_loads_with_plain_transformers(setup, runs, tmp_path):
    import zipfile

    studio, _, _ = setup
    run_id = runs["lora"]["run_id"]
    with zipfile.ZipFile(studio.export_run(run_id, merged=True)) as archive:
        archive.extractall(tmp_path)
    root = tmp_path / run_id
    merged = AutoModelForSequenceClassification.from_pretrained(root / "merged").eval()
    tokenizer = AutoTokenizer.from_pretrained(root / "merged")
    _, adapter_model, _ = load_classifier(root / "model")
    _, merged_here, info = load_classifier(root / "merged")  # the pooling travels with the merged folder
    assert info["pooling"] == "mean" and info["method"] == "full"
    texts = ["a gripping , beautifully made film", "dull and lifeless from start to finish"]
    answers = logits_of(adapter_model, tokenizer, texts)
    np.testing.assert_allclose(model_card_probabilities(merged, tokenizer, texts), answers, atol=1e-5)
    np.testing.assert_allclose(logits_of(merged_here, tokenizer, texts), answers, atol=1e-5)
    assert "mean-pooled" in (root / "README.md").read_text()
    assert "accuracy" in (root / "README.md").read_text()
    with pytest.raises(StudioError, match="merge"):
        studio.export_run(runs["full"]["run_id"], merged=True)


def test_length_grouped_batches_pad_far_less_than_random_ones(setup):
    studio, base, dataset = setup
    shares = {}
    for grouped in (True, False):  # batches of 4: the Trainer's length groups span 18 batches on 300 rows
        run = studio.start_finetuning({**FINETUNE_RUN, "dataset_id": dataset["dataset_id"], "base_model": base,
                                       "method": "full", "max_steps": 10, "batch_size": 4, "eval_steps": 10,
                                       "group_by_length": grouped})
        done = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="the run")
        assert done["status"] == "completed", done["error"]
        shares[grouped] = done["info"]["padding_share"]
    # SST-2 sentences run from a few words to the 48-token limit: random batches pad a good share.
    assert shares[True] < 0.10 and shares[False] > 2 * shares[True]
    log = (studio.workspace.run_dir(run["run_id"]) / "train.log").read_text()
    assert "padding: " in log and "(length-grouped batches)" not in log

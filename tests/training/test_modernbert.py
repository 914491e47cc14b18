"""ModernBERT (`architecture="modernbert"`) wherever a BERT model goes: pretraining from scratch on real text (its
built-in sparse prediction, the eval, the no-context line, the downstream check), continued pretraining, fine-tuning
with every method (reloaded logits identical to the scored ones, plain transformers and peft too), fill-mask, export,
and clear refusals of module names it does not have. Tiny shapes, few steps: a CPU runs it in a few minutes."""

import json
import zipfile

import numpy as np
import pytest
import torch
from conftest import AUTHORS, TEST_DATA, TINY_RUN, wait_for
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM, pipeline)

from pretrain_studio.config import METHODS, MODEL_PRESETS, ConfigError, PretrainConfig, preset_shape
from pretrain_studio.data.labelled import load_labelled
from pretrain_studio.model_store import load_classifier, predict_proba
from pretrain_studio.studio import Studio, StudioError

MOBY_DICK = TEST_DATA / "moby_dick_crlf.txt"
MODERN_RUN = {**TINY_RUN, "architecture": "modernbert", "max_steps": 30, "eval_steps": 10, "save_steps": 30}
FINETUNE_RUN = {"max_steps": 12, "eval_steps": 4, "logging_steps": 2, "batch_size": 16, "max_seq_length": 48,
                "seed": 3, "lora_r": 4, "adapter_size": 16, "top_layers": 1, "adalora_init_r": 6,
                "adalora_target_r": 2}


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


def series(studio, run_id, name):
    return [m["value"] for m in studio.run_metrics(run_id) if m["name"] == name]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    studio = Studio(tmp_path_factory.mktemp("modernbert") / "workspace")
    corpus = studio.upload_corpus([MOBY_DICK], "moby dick")
    dataset = studio.upload_dataset("authors", AUTHORS["train"], validation_file=AUTHORS["dev"],
                                    test_file=AUTHORS["test"])
    run = studio.start_pretraining({**MODERN_RUN, "corpus_id": corpus["corpus_id"]})
    status = wait_for(lambda: finished(studio, run["run_id"]), timeout=600, message="the tiny ModernBERT run")
    yield studio, status, dataset
    studio.close()


@pytest.fixture(scope="module")
def finetuned(pretrained):
    """One fine-tuning run per method on the ModernBERT base, all queued at once."""
    studio, base, dataset = pretrained
    launched = {m: studio.start_finetuning({**FINETUNE_RUN, "dataset_id": dataset["dataset_id"],
                                            "base_model": base["run_id"], "method": m})["run_id"] for m in METHODS}
    return {m: wait_for(lambda: finished(studio, run_id), timeout=600, message=f"{m} run")
            for m, run_id in launched.items()}


# --- settings ------------------------------------------------------------------------------------------------

def test_architecture_is_validated_and_defaults_to_modernbert():
    assert PretrainConfig().architecture == "modernbert"
    with pytest.raises(ConfigError, match="architecture: unknown architecture 'gpt'; choose one of bert, modernbert"):
        PretrainConfig(corpus_id="c", architecture="gpt").validate()


@pytest.mark.parametrize("preset", list(MODEL_PRESETS))
def test_each_preset_has_about_the_bert_parameter_count(preset):
    with torch.device("meta"):  # shapes only: no weights are allocated
        bert = BertForMaskedLM(BertConfig(vocab_size=8000, pad_token_id=0, **preset_shape(preset)))
        modern = ModernBertForMaskedLM(ModernBertConfig(vocab_size=8000, pad_token_id=0,
                                                        **preset_shape(preset, "modernbert")))
    count = {name: sum(p.numel() for p in model.parameters()) for name, model in (("bert", bert), ("modern", modern))}
    assert 0.9 * count["bert"] < count["modern"] <= count["bert"], count
    assert preset_shape(preset, "modernbert")["intermediate_size"] % 64 == 0


# --- pretraining ----------------------------------------------------------------------------------------------

def test_pretraining_from_scratch_learns_and_saves_a_plain_modernbert(pretrained):
    studio, status, _ = pretrained
    assert status["status"] == "completed", status["error"]
    assert status["step"] == MODERN_RUN["max_steps"]
    eval_loss = series(studio, status["run_id"], "eval_loss")
    assert len(eval_loss) >= 3 and eval_loss[-1] < eval_loss[0] - 0.5, eval_loss
    train_loss = series(studio, status["run_id"], "train_loss")
    assert train_loss[-1] < train_loss[0]
    accuracy = series(studio, status["run_id"], "eval_accuracy")  # sparse logits put back on the label grid
    assert 0 <= accuracy[0] < accuracy[-1] <= 1, accuracy
    assert status["info"]["no_context_loss"] > 0
    log = (studio.workspace.run_dir(status["run_id"]) / "train.log").read_text()
    assert "ModernBertForMaskedLM" in log and "GeGLU feed-forward 320 wide" in log
    config = json.loads((studio.workspace.run_dir(status["run_id"]) / "model" / "config.json").read_text())
    assert config["model_type"] == "modernbert" and config["architectures"] == ["ModernBertForMaskedLM"]
    assert config["sparse_prediction"] is False  # sparse prediction was for training: the folder is standard
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (128, 2, 320)


def test_downstream_check_fine_tunes_a_modernbert_copy(pretrained, monkeypatch):
    """The check a pretraining run makes with downstream_datasets (training/downstream.py), on the saved model:
    the classifier gets the encoder and the MLM head's transform, the recipe shortened to a few steps."""
    from pretrain_studio.training import downstream

    studio, status, dataset = pretrained
    monkeypatch.setitem(downstream.RECIPE, "steps", 4)
    model_dir = studio.workspace.run_dir(status["run_id"]) / "model"
    mlm = AutoModelForMaskedLM.from_pretrained(model_dir)
    task = downstream.DownstreamTask(dataset["dataset_id"], studio.registry.get_dataset(dataset["dataset_id"])["path"],
                                     AutoTokenizer.from_pretrained(model_dir), seed=0)
    callback = downstream.DownstreamCallback([task], _Reporter(), every=1, seed=0)
    callback.check(mlm, 7)
    (step, accuracy), = callback.points[dataset["dataset_id"]]
    assert step == 7 and 0 < accuracy <= 1
    assert mlm.config.classifier_pooling == "cls"  # the check's mean pooling went to its own copy of the config


class _Reporter:
    """What DownstreamCallback asks of a run's reporter, recorded."""

    class registry:
        @staticmethod
        def metrics_since(run_id):
            return []

    run_id = "run"

    def __init__(self):
        self.rows = []

    def metrics(self, step, values):
        self.rows.append((step, values))

    def log(self, message):
        self.rows.append(message)

    def info(self, **values):
        self.rows.append(values)


def test_saved_model_loads_with_plain_transformers_and_fills_masks(pretrained):
    studio, status, _ = pretrained
    model_dir = str(studio.workspace.run_dir(status["run_id"]) / "model")
    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    assert type(model).__name__ == "ModernBertForMaskedLM"
    fill = pipeline("fill-mask", model=model_dir, tokenizer=model_dir, device="cpu")
    text = "the whale swam into the [MASK] sea ."
    theirs = fill(text, top_k=3)
    ours = studio.fill_mask(status["run_id"], text, 3)[0]
    assert [a["token_str"].replace(" ", "") for a in theirs] == [a["token"] for a in ours]
    assert ours[0]["score"] == pytest.approx(theirs[0]["score"], abs=1e-4)
    assert len(studio.fill_mask(status["run_id"], "the [MASK] of the [MASK] .", 2)) == 2


def test_continued_pretraining_from_a_modernbert_run(pretrained):
    studio, status, _ = pretrained
    run = studio.start_pretraining({**MODERN_RUN, "corpus_id": status["corpus_id"], "base_model": status["run_id"],
                                    "architecture": "bert", "max_steps": 10, "eval_steps": 5})
    child = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="continued run")
    assert child["status"] == "completed", child["error"]
    run_dir = studio.workspace.run_dir(run["run_id"])
    assert json.loads((run_dir / "model" / "config.json").read_text())["model_type"] == "modernbert"
    assert "architecture: the base model's (modernbert)" in (run_dir / "train.log").read_text()
    parent_last = series(studio, status["run_id"], "eval_loss")[-1]
    assert series(studio, run["run_id"], "eval_loss")[0] < parent_last + 0.5  # it starts from the trained weights


def test_export_of_the_pretraining_run(pretrained):
    studio, status, _ = pretrained
    with zipfile.ZipFile(studio.export_run(status["run_id"])) as archive:
        names = archive.namelist()
    assert f"{status['run_id']}/model/model.safetensors" in names and f"{status['run_id']}/README.md" in names


# --- fine-tuning ----------------------------------------------------------------------------------------------

def probabilities(model, tokenizer, texts):
    return predict_proba(tokenizer, model, texts, max_length=FINETUNE_RUN["max_seq_length"]).numpy()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_fine_tunes_and_reloads_to_the_scored_logits(pretrained, finetuned, method):
    studio, _, _ = pretrained
    status = finetuned[method]
    assert status["status"] == "completed", status["error"]
    info = status["info"]
    assert status["step"] == FINETUNE_RUN["max_steps"]
    assert 0 < info["trainable_parameters"] <= info["total_parameters"]
    assert (info["trainable_share"] == 1.0) == (method == "full")
    folder = studio.workspace.run_dir(status["run_id"]) / "model"
    data = load_labelled(studio.registry.get_dataset(status["dataset_id"])["path"])[info["score_split"]]
    texts = list(data["text"])
    torch.manual_seed(0)
    tokenizer, first, _ = load_classifier(folder)
    torch.manual_seed(1)  # anything left unsaved (a fresh head) would now come out different
    _, second, _ = load_classifier(folder)
    assert first.config.classifier_pooling == "mean"  # the pooling setting, mapped onto ModernBERT's own
    a, b = probabilities(first, tokenizer, texts), probabilities(second, tokenizer, texts)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert (a.argmax(1) == np.asarray(data["label"])).mean() == pytest.approx(status["test_metrics"]["accuracy"],
                                                                             abs=1e-9)


def test_methods_adapt_modernbert_modules(pretrained, finetuned):
    studio, _, _ = pretrained
    log = {m: (studio.workspace.run_dir(s["run_id"]) / "train.log").read_text() for m, s in finetuned.items()}
    assert "lora targets Wqkv" in log["lora"] and "head initialised from a linear probe" in log["full"]
    config = json.loads((studio.workspace.run_dir(finetuned["ia3"]["run_id"]) / "model" / "adapter_config.json")
                        .read_text())
    assert set(config["target_modules"]) == {"Wqkv", "mlp.Wo"} and config["feedforward_modules"] == ["mlp.Wo"]
    wrapped = json.loads((studio.workspace.run_dir(finetuned["adapter"]["run_id"]) / "model"
                          / "bottleneck_config.json").read_text())["wrapped_modules"]
    assert wrapped == ["model.layers.0.attn.Wo", "model.layers.0.mlp.Wo", "model.layers.1.attn.Wo",
                       "model.layers.1.mlp.Wo"]
    share = {m: s["info"]["trainable_share"] for m, s in finetuned.items()}
    assert share["ia3"] < share["lora"] < share["full"] and share["top_layers"] < share["full"]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_artefacts_load_with_plain_transformers_and_peft(pretrained, finetuned, method):
    from peft import PeftModel

    studio, _, _ = pretrained
    folder = studio.workspace.run_dir(finetuned[method]["run_id"]) / "model"
    described = json.loads((folder / "studio_model.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if method == "lora":  # the base with the pooling the run trained with, as the exported model card says
        id2label = {int(k): v for k, v in described["id2label"].items()}
        base = AutoModelForSequenceClassification.from_pretrained(
            described["base_model"], num_labels=len(id2label), id2label=id2label, classifier_pooling="mean")
        plain = PeftModel.from_pretrained(base, folder).eval()
    else:  # a full model's config.json carries classifier_pooling
        plain = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    _, ours, _ = load_classifier(folder)
    texts = ["Call me Ishmael, and shall I compare thee to a summer's day?", "I celebrate myself, and sing myself."]
    np.testing.assert_allclose(probabilities(plain, tokenizer, texts), probabilities(ours, tokenizer, texts),
                               atol=1e-5)


def test_classify_and_export_a_merged_lora_run(pretrained, finetuned):
    studio, _, _ = pretrained
    run_id = finetuned["lora"]["run_id"]
    answer = studio.classify(run_id, "It is a truth universally acknowledged, that a single man must be in want.")
    assert answer["label"] in {"Austen", "Shakespeare", "Whitman"}
    with zipfile.ZipFile(studio.export_run(run_id, merged=True)) as archive:
        names = archive.namelist()
        card = archive.read(f"{run_id}/README.md").decode()
    assert f"{run_id}/merged/model.safetensors" in names
    assert "classifier_pooling" in card


def test_refused_settings_name_the_method_and_the_modules_modernbert_has(pretrained):
    studio, base, dataset = pretrained
    values = {**FINETUNE_RUN, "dataset_id": dataset["dataset_id"], "base_model": base["run_id"]}
    with pytest.raises(StudioError) as err:
        studio.start_finetuning({**values, "method": "lora", "lora_target_modules": "query,key"})
    message = str(err.value)
    assert message.startswith("lora_target_modules: the model has no module named 'query'; its linear layers are "
                              "called ")
    assert "Wqkv" in message and "(lora on a modernbert model)" in message
    with pytest.raises(StudioError, match="top_layers: the model has only 2 encoder layers"):
        studio.start_finetuning({**values, "method": "top_layers", "top_layers": 3})

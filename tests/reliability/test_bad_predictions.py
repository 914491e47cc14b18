"""Bad prediction requests: a clear message naming the problem, long texts answered rather than refused, and a
model whose files were deleted reported as such while the app goes on working.

The API cases run against a real `python app.py` that trains a tiny pretraining run in its own worker; the
long-text windowing is checked in-process against plain transformers on the same tiny model.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import MOBY_DICK, wait_for
from gradio_client import Client
from gradio_client.exceptions import AppError
from tiny_models import TINY_POSITIONS, save_tiny_mlm
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForSequenceClassification

from pretrain_studio.inference import PredictionError, fill_mask

LONG_WORDS = 5000
# A pretraining run small enough to finish in seconds on two cores (tiny preset, a few steps, short blocks).
QUICK_RUN = {"model_size": "tiny", "vocab_size": 300, "max_steps": 3, "batch_size": 4, "max_seq_length": 32,
             "warmup_steps": 0, "eval_steps": 3, "logging_steps": 1, "save_steps": 3, "seed": 1}


def long_text(words: int = LONG_WORDS) -> str:
    """The first `words` words of tests/data/moby_dick_crlf.txt."""
    return " ".join(MOBY_DICK.read_text(encoding="utf-8").split()[:words])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, wikitext_slice):
    return save_tiny_mlm(tmp_path_factory.mktemp("mlm") / "tiny", wikitext_slice)


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory, tiny):
    """Two classifiers on the tiny model: a complete folder, and a LoRA adapter saved by the studio's own code
    on top of a copy of the tiny model (the copy can then be deleted)."""
    from pretrain_studio.config import FinetuneConfig
    from pretrain_studio.model_store import save_classifier
    from pretrain_studio.training.peft_methods import apply_method

    root = tmp_path_factory.mktemp("classifiers")
    labels = {0: "negative", 1: "positive"}
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    torch.manual_seed(0)
    full = BertForSequenceClassification.from_pretrained(tiny, num_labels=2, id2label=labels)
    full.save_pretrained(root / "full")
    tokenizer.save_pretrained(root / "full")
    base = shutil.copytree(tiny, root / "lora_base")
    model = BertForSequenceClassification.from_pretrained(base, num_labels=2, id2label=labels)
    lora = apply_method(model, FinetuneConfig(dataset_id="d", base_model=str(base), method="lora"), total_steps=10)
    save_classifier(lora, tokenizer, root / "lora", method="lora", base_model=str(base), id2label=labels)
    return {"full": root / "full", "lora": root / "lora", "lora_base": base}


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def trained_run(client):
    """A completed pretraining run, trained by the app's worker on the sample corpus."""
    corpus = client.predict(api_name="/list_corpora")[0]["corpus_id"]
    run_id = client.predict({**QUICK_RUN, "corpus_id": corpus}, api_name="/start_pretraining")["run_id"]
    status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["status"]
                      not in ("queued", "running") and s, timeout=300, message="the quick run to finish")
    assert status["status"] == "completed", status["error"]
    return run_id


# --- fill-mask without a mask --------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize("text", ["no mask in this text .", "the [mask] in lower case .", ""])
def test_fill_mask_without_a_mask_names_the_mask_token(client, trained_run, text):
    with pytest.raises(AppError) as err:
        client.predict(trained_run, text, 3, api_name="/fill_mask")
    message = str(err.value)
    assert message.startswith("text: the text has no [MASK] token; write [MASK] where the missing word goes")
    assert "Traceback" not in message


# --- texts longer than the model's positions -----------------------------------------------------------------

@pytest.mark.e2e
def test_long_texts_are_truncated_and_answered(client, trained_run, classifiers):
    text = "the [MASK] of the river . " + long_text()
    answers = client.predict(trained_run, text, 3, api_name="/fill_mask")
    assert len(answers) == 1 and len(answers[0]) == 3
    assert len(answers[0][0]["sequence"].split()) < LONG_WORDS / 10  # the window the model read, not the whole text
    result = client.predict(str(classifiers["full"]), long_text(), "", api_name="/classify")
    assert result["label"] in ("negative", "positive") and sum(result["scores"].values()) == pytest.approx(1)


def window_answer(folder, text: str, top_k: int) -> list[str]:
    """Plain transformers on the window fill_mask promises for a text whose only mask lies beyond the model's
    positions: the window of the model's positions centred on the mask."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    room = TINY_POSITIONS - 2  # [CLS] and [SEP]
    mask = ids.index(tokenizer.mask_token_id)
    start = max(0, min(mask - room // 2, len(ids) - room))
    window = [tokenizer.cls_token_id, *ids[start:start + room], tokenizer.sep_token_id]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([window])).logits[0, mask - start + 1]
    return tokenizer.convert_ids_to_tokens(logits.topk(top_k).indices.tolist())


def test_a_mask_beyond_the_first_window_is_answered_from_a_window_around_it(tiny):
    words = long_text(600).split()
    text = " ".join(words[:500] + ["[MASK]"] + words[500:])
    answers = fill_mask(tiny, text, 5)
    assert len(answers) == 1
    assert [a["token"] for a in answers[0]] == window_answer(tiny, text, 5)
    # Masks far apart are each answered, in text order, from their own window.
    both = fill_mask(tiny, "[MASK] " + text, 5)
    assert len(both) == 2 and [a["token"] for a in both[1]] == [a["token"] for a in answers[0]]


def test_short_texts_are_answered_as_transformers_does(tiny):
    from transformers import pipeline

    text = "the [MASK] of the river ."
    expected = pipeline("fill-mask", model=str(tiny), tokenizer=str(tiny))(text, top_k=5)
    answers = fill_mask(tiny, text, 5)[0]
    assert [a["token"] for a in answers] == [e["token_str"].replace(" ", "") for e in expected]
    assert [a["score"] for a in answers] == pytest.approx([e["score"] for e in expected], rel=1e-4)


# --- models whose files were deleted --------------------------------------------------------------------------

@pytest.mark.e2e
def test_deleted_run_model_gets_a_clear_message_and_the_app_keeps_working(client, app_server, trained_run, tiny):
    assert client.predict(trained_run, "the [MASK] .", 2, api_name="/fill_mask")  # loaded and cached
    model_dir = app_server.workspace / "runs" / trained_run / "model"
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(AppError) as err:
        client.predict(trained_run, "the [MASK] .", 2, api_name="/fill_mask")
    assert str(err.value) == f"no model files in {model_dir} (were they deleted?)"
    assert len(client.predict(str(tiny), "the [MASK] .", 2, api_name="/fill_mask")[0]) == 2  # still serving

    shutil.rmtree(model_dir.parent)
    with pytest.raises(AppError) as err:
        client.predict(trained_run, "the [MASK] .", 2, api_name="/fill_mask")
    assert str(err.value).startswith(f"run {trained_run} has no saved model (status: completed); "
                                     "its model files are missing (were they deleted?)")
    assert client.predict(trained_run, api_name="/run_status")["status"] == "completed"  # the record is intact
    assert trained_run in [r["run_id"] for r in client.predict(api_name="/list_runs")]
    assert len(client.predict(str(tiny), "the [MASK] .", 2, api_name="/fill_mask")[0]) == 2


@pytest.mark.e2e
def test_deleted_classifier_files_get_a_clear_message(client, classifiers):
    for kind in ("full", "lora"):
        assert client.predict(str(classifiers[kind]), "a fine film .", "", api_name="/classify")["label"]
    (classifiers["full"] / "model.safetensors").unlink()
    with pytest.raises(AppError) as err:
        client.predict(str(classifiers["full"]), "a fine film .", "", api_name="/classify")
    assert str(err.value) == f"no model files in {classifiers['full']} (were they deleted?)"
    shutil.rmtree(classifiers["lora_base"])  # the adapter's own files stay; the model it adapts is gone
    with pytest.raises(AppError) as err:
        client.predict(str(classifiers["lora"]), "a fine film .", "", api_name="/classify")
    assert str(err.value) == (f"the base model of {classifiers['lora']} is missing: {classifiers['lora_base']} "
                              "(was it deleted?)")


def test_missing_model_folder_is_reported_in_process(tmp_path):
    with pytest.raises(PredictionError, match=r"is gone \(was it deleted\?\)"):
        fill_mask(tmp_path / "nowhere", "the [MASK] .", 2)

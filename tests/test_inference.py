"""fill_mask on a saved model folder: masks required, long texts truncated, deleted files reported."""

import shutil

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from pretrain_studio.data.tokenizer import train_tokenizer
from pretrain_studio.inference import PredictionError, fill_mask


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, wikitext_slice):
    lines = [l for l in wikitext_slice.read_text(encoding="utf-8").splitlines() if l.strip()]
    tokenizer = train_tokenizer([lines], 500, True)
    torch.manual_seed(0)  # an untrained model: fix its weights so its answers are the same on every run
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=128, max_position_embeddings=64))
    folder = tmp_path_factory.mktemp("mlm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_answers_per_mask_sorted_by_probability(model_dir):
    answers = fill_mask(model_dir, "the [MASK] is [MASK] .", top_k=3)
    assert len(answers) == 2
    for per_mask in answers:
        scores = [a["score"] for a in per_mask]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
        # As in transformers' fill-mask pipeline, a special token may be proposed; the sequence then omits it.
        special = set(AutoTokenizer.from_pretrained(model_dir).all_special_tokens)
        assert all(a["token"] in a["sequence"].replace(" ", "") or a["token"].startswith("##") or a["token"] in special
                   for a in per_mask)


def test_text_without_mask_is_refused(model_dir):
    with pytest.raises(PredictionError, match=r"\[MASK\]"):
        fill_mask(model_dir, "no mask here", 3)


def test_text_longer_than_the_model_is_truncated_not_refused(model_dir):
    answers = fill_mask(model_dir, "the [MASK] " + "word " * 500, 2)
    assert len(answers) == 1 and len(answers[0]) == 2
    # A mask beyond the first window is read in a window around it (tests/reliability/test_bad_predictions.py).
    late = fill_mask(model_dir, "word " * 500 + "[MASK]", 2)
    assert len(late) == 1 and len(late[0]) == 2


def test_deleted_model_files_are_reported(model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(PredictionError, match="no model files"):
        fill_mask(copy, "a [MASK]", 2)


def test_batched_probabilities_come_back_in_input_order(model_dir):
    """predict_proba batches texts by length; every row must still belong to its own text."""
    from transformers import BertForSequenceClassification

    from pretrain_studio.model_store import predict_proba

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()
    texts = ["the " * n + "end ." for n in (9, 1, 30, 4, 0, 17, 2, 25, 6, 12, 3)]
    one_by_one = torch.cat([predict_proba(tokenizer, model, [text]) for text in texts])
    batched = predict_proba(tokenizer, model, texts, batch_size=4)
    assert batched.shape == (len(texts), 3)
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-4)
    pairs = [text[::-1] for text in texts]
    torch.testing.assert_close(predict_proba(tokenizer, model, texts, pairs, batch_size=4),
                               torch.cat([predict_proba(tokenizer, model, [t], [p]) for t, p in zip(texts, pairs)]),
                               atol=1e-5, rtol=1e-4)

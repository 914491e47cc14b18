"""MLM masking (training/masking.py): how selected tokens are replaced, with `mask_replace_probability`."""

from __future__ import annotations

import pytest
import torch

from pretrain_studio.config import ConfigError, PretrainConfig
from pretrain_studio.data.tokenizer import train_tokenizer
from pretrain_studio.training.masking import MaskingCollator


@pytest.fixture(scope="module")
def tokenizer(wikitext_slice):
    lines = [line for line in wikitext_slice.read_text(encoding="utf-8").splitlines() if line.strip()]
    return train_tokenizer(iter([lines]), 1000, True)


@pytest.fixture(scope="module")
def blocks(tokenizer, wikitext_slice):
    text = " ".join(wikitext_slice.read_text(encoding="utf-8").split()[:4000])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [{"input_ids": ids[i:i + 64]} for i in range(0, 64 * 32, 64)]


def replaced(tokenizer, blocks, share: float, whole_words: bool = False) -> tuple[float, float]:
    """(share of the selected tokens that became [MASK], share that became another token)."""
    collator = MaskingCollator(tokenizer, mlm_probability=0.3, whole_word_mask=whole_words, seed=0,
                               mask_replace_probability=share)
    batch = collator(blocks)
    original = torch.tensor([b["input_ids"] for b in blocks])
    selected = batch["labels"] != -100
    masks = (batch["input_ids"] == tokenizer.mask_token_id) & selected
    other = (batch["input_ids"] != original) & selected & ~masks
    return masks.sum().item() / selected.sum().item(), other.sum().item() / selected.sum().item()


@pytest.mark.parametrize("whole_words", [False, True], ids=["tokens", "whole words"])
def test_the_share_replaced_by_mask_follows_the_setting_and_the_rest_is_split(tokenizer, blocks, whole_words):
    assert replaced(tokenizer, blocks, 1.0, whole_words) == (1.0, 0.0)  # always [MASK]
    mask, other = replaced(tokenizer, blocks, 0.8, whole_words)  # BERT's 80/10/10
    assert 0.72 < mask < 0.88 and 0.05 < other < 0.15
    mask, other = replaced(tokenizer, blocks, 0.0, whole_words)  # never [MASK]: half random, half kept
    assert mask < 0.01 and 0.4 < other < 0.6  # (a random token may happen to be [MASK] itself)


def test_the_setting_is_bounded_and_saved_with_the_run():
    with pytest.raises(ConfigError, match=r"mask_replace_probability: must be at most 1 \(got 1.5\)"):
        PretrainConfig(corpus_id="c", mask_replace_probability=1.5).validate()
    assert PretrainConfig.from_dict({"corpus_id": "c", "mask_replace_probability": "1"}).to_dict()[
        "mask_replace_probability"] == 1.0

"""MLM masking for packed blocks, with optional whole-word masking and a fixed-mask eval set.

transformers' `DataCollatorForLanguageModeling(whole_word_mask=True)` needs the
tokenizer's offset mapping for every example, which packed blocks (several
documents cut into fixed-length pieces) no longer have. For WordPiece the
word boundaries are in the tokens themselves: a token starting with "##"
continues the previous word. So whole-word masking here groups by that prefix.
"""

from __future__ import annotations

import torch
from transformers import DataCollatorForLanguageModeling


class MaskingCollator(DataCollatorForLanguageModeling):
    """BERT's 80/10/10 masking; whole words when asked; examples that already carry labels pass through."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 seed: int | None = None):
        # The parent's own whole-word path needs offsets; we implement it below instead.
        super().__init__(tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability, seed=seed)
        self.use_whole_words = whole_word_mask
        vocab = tokenizer.get_vocab()
        continuation = torch.zeros(len(tokenizer), dtype=torch.bool)
        ids = [i for tok, i in vocab.items() if tok.startswith("##") and i < len(continuation)]
        continuation[ids] = True
        self.continuation = continuation
        if whole_word_mask and not ids:
            raise ValueError("whole_word_mask needs a WordPiece tokenizer (tokens starting with '##')")

    def torch_call(self, examples):
        if "labels" in examples[0]:  # pre-masked (the eval set): just stack
            return {key: torch.tensor([ex[key] for ex in examples]) for key in ("input_ids", "labels")}
        return super().torch_call(examples)

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        if not self.use_whole_words:
            return super().torch_mask_tokens(inputs, special_tokens_mask=special_tokens_mask)
        labels = inputs.clone()
        special = torch.tensor(
            [self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in labels.tolist()],
            dtype=torch.bool,
        )
        # Word index per position: a new word starts wherever a token is not a "##" continuation.
        starts = ~self.continuation[inputs] | special
        word_ids = torch.cumsum(starts.long(), dim=1)
        # Draw one coin per word (at its first token), then spread it over the word's tokens.
        coins = torch.bernoulli(torch.full(inputs.shape, self.mlm_probability), generator=self.generator).bool()
        coins &= starts & ~special
        # scatter_add, not scatter_: several positions share a word id and only the first holds the coin.
        word_chosen = torch.zeros(inputs.shape[0], inputs.shape[1] + 1, dtype=torch.long)
        word_chosen.scatter_add_(1, word_ids, coins.long())
        masked = (torch.gather(word_chosen, 1, word_ids) > 0) & ~special
        labels[~masked] = -100
        replace = torch.bernoulli(torch.full(inputs.shape, 0.8), generator=self.generator).bool() & masked
        inputs[replace] = self.tokenizer.mask_token_id
        randomise = torch.bernoulli(torch.full(inputs.shape, 0.5), generator=self.generator).bool() & masked & ~replace
        inputs[randomise] = torch.randint(len(self.tokenizer), inputs.shape, generator=self.generator)[randomise]
        return inputs, labels

    def mask_once(self, dataset, seed: int):
        """Mask a dataset once with its own seed: the same positions are scored at every evaluation."""
        fixed = MaskingCollator(self.tokenizer, self.mlm_probability, self.use_whole_words, seed=seed)

        def add_masks(batch):
            out = fixed([{"input_ids": ids} for ids in batch["input_ids"]])
            return {"input_ids": out["input_ids"].tolist(), "labels": out["labels"].tolist()}

        return dataset.map(add_masks, batched=True, batch_size=256, keep_in_memory=True, desc="masking eval blocks")

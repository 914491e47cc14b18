"""MLM masking for packed blocks, with optional whole-word masking (WordPiece or Chinese) and a fixed-mask eval set.

transformers' `DataCollatorForLanguageModeling(whole_word_mask=True)` needs the
tokenizer's offset mapping for every example, which packed blocks (several
documents cut into fixed-length pieces) no longer have. For WordPiece the
word boundaries are in the tokens themselves: a token starting with "##"
continues the previous word. So whole-word masking here groups by that prefix.

Chinese whole-word masking (`chinese_whole_word_mask`, as Chinese BERT-wwm, Cui et al. 2019) cannot read word
boundaries from the tokens: every CJK character is a token of its own. The boundaries come from jieba at
packing time instead, stored with each block as a `word_start` column (1 where a token begins a word; see
mlm_data.pack_function and data/chinese.py). When a block carries that column, words are chosen from it, and
BERT's 80/10/10 rule is drawn per word: a chosen word is all [MASK] (80%), all random tokens (10%) or all kept
(10%), so a word is never half given away. Each word is chosen with `mlm_probability`, so the share of masked
*tokens* stays `mlm_probability` on average (fewer, longer spans than token-level masking).
"""

from __future__ import annotations

import torch
from transformers import DataCollatorForLanguageModeling


def continuation_tokens(tokenizer) -> torch.Tensor:
    """One flag per token id: whether the token is a WordPiece continuation ("##...")."""
    continuation = torch.zeros(len(tokenizer), dtype=torch.bool)
    ids = [i for tok, i in tokenizer.get_vocab().items() if tok.startswith("##") and i < len(continuation)]
    continuation[ids] = True
    return continuation


class MaskingCollator(DataCollatorForLanguageModeling):
    """BERT's 80/10/10 masking; whole words when asked (or when blocks carry `word_start`); examples that already
    carry labels pass through."""

    def __init__(self, tokenizer, mlm_probability: float = 0.15, whole_word_mask: bool = False,
                 seed: int | None = None, mask_replace_probability: float = 0.8):
        # The parent's own whole-word path needs offsets; we implement it below instead. What is not [MASK] is
        # split evenly between a random token and the token kept (BERT's 10/10).
        super().__init__(tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability, seed=seed,
                         mask_replace_prob=mask_replace_probability,
                         random_replace_prob=(1 - mask_replace_probability) / 2)
        self.use_whole_words = whole_word_mask
        self.curriculum = None  # a curriculum.Curriculum shapes training batches when a schedule lever is on
        self.continuation = continuation_tokens(tokenizer)
        if whole_word_mask and not self.continuation.any():
            raise ValueError("whole_word_mask needs a WordPiece tokenizer (tokens starting with '##')")

    def torch_call(self, examples):
        if "labels" in examples[0]:  # pre-masked (the eval set): just stack
            return {key: torch.tensor([ex[key] for ex in examples]) for key in ("input_ids", "labels")}
        if self.curriculum is not None:  # training batches: smaller or in short pieces early on (curriculum.py)
            examples = self.curriculum.shape_batch(examples)
        if "word_start" in examples[0]:  # Chinese whole-word masking: the words were found at packing time
            if self.seed is not None and self.generator is None:
                self.create_rng()  # as the parent's torch_call does: a seeded collator draws from its own generator
            inputs = torch.tensor([ex["input_ids"] for ex in examples])
            starts = torch.tensor([ex["word_start"] for ex in examples], dtype=torch.bool)
            inputs, labels = self.mask_words(inputs, starts, per_word=True)
            return {"input_ids": inputs, "labels": labels}
        return super().torch_call(examples)

    def torch_mask_tokens(self, inputs, special_tokens_mask=None, offset_mapping=None):
        if not self.use_whole_words:
            return super().torch_mask_tokens(inputs, special_tokens_mask=special_tokens_mask)
        # Word starts: wherever a token is not a "##" continuation.
        return self.mask_words(inputs, ~self.continuation[inputs], per_word=False)

    def mask_words(self, inputs: torch.Tensor, starts: torch.Tensor, per_word: bool):
        """Choose whole words (a word = a start token and the tokens after it up to the next start) with
        `mlm_probability` each and mask all their tokens. `per_word`: draw the 80/10/10 choice once per word
        (Chinese BERT-wwm) rather than per token."""
        labels = inputs.clone()
        special = torch.tensor(
            [self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True) for row in labels.tolist()],
            dtype=torch.bool,
        )
        starts = starts | special
        word_ids = torch.cumsum(starts.long(), dim=1)

        def spread(coins):  # a coin drawn at each word's first token, given to all the word's tokens
            # scatter_add, not scatter_: several positions share a word id and only the first holds the coin.
            chosen = torch.zeros(inputs.shape[0], inputs.shape[1] + 1, dtype=torch.long)
            chosen.scatter_add_(1, word_ids, (coins & starts).long())
            return torch.gather(chosen, 1, word_ids) > 0

        coins = torch.bernoulli(torch.full(inputs.shape, self.mlm_probability), generator=self.generator).bool()
        masked = spread(coins & ~special) & ~special
        labels[~masked] = -100
        replace = torch.bernoulli(torch.full(inputs.shape, self.mask_replace_prob), generator=self.generator).bool()
        replace = (spread(replace) if per_word else replace) & masked
        inputs[replace] = self.tokenizer.mask_token_id
        randomise = torch.bernoulli(torch.full(inputs.shape, 0.5), generator=self.generator).bool()
        randomise = (spread(randomise) if per_word else randomise) & masked & ~replace
        inputs[randomise] = torch.randint(len(self.tokenizer), inputs.shape, generator=self.generator)[randomise]
        return inputs, labels

    def mask_once(self, dataset, seed: int):
        """Mask a dataset once with its own seed: the same positions are scored at every evaluation.
        Blocks with a `word_start` column are masked by whole words, and the column is dropped."""
        fixed = MaskingCollator(self.tokenizer, self.mlm_probability, self.use_whole_words, seed=seed,
                                mask_replace_probability=self.mask_replace_prob)
        columns = [c for c in ("input_ids", "word_start") if c in dataset.column_names]

        def add_masks(batch):
            out = fixed([dict(zip(columns, values)) for values in zip(*(batch[c] for c in columns))])
            return {"input_ids": out["input_ids"].tolist(), "labels": out["labels"].tolist()}

        return dataset.map(add_masks, batched=True, batch_size=256, keep_in_memory=True, desc="masking eval blocks",
                           remove_columns=[c for c in dataset.column_names if c == "word_start"])

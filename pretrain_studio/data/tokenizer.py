"""WordPiece tokenizer training on a corpus, and the pre-launch tokenizer report.

`train_tokenizer` streams the memory-mapped corpus into the `tokenizers`
WordPiece trainer (BERT's normaliser and pre-tokeniser) and wraps the result
as a `transformers` BertTokenizer, so it saves and reloads with
`save_pretrained` / `AutoTokenizer` like any Hugging Face tokenizer.

Chinese is tokenised as Google's BERT-Chinese models do: the normaliser's `handle_chinese_chars` puts spaces
around every CJK ideograph, so each becomes a word of one character and WordPiece never joins two of them (nor
makes "##" pieces of them); the vocabulary then holds each character the corpus uses (WordPiece keeps the whole
alphabet, whatever `vocab_size` says). Lowercasing and accent stripping go together, as in BERT's uncased and
Chinese models: lowercasing leaves ideographs alone, and stripping accents (NFD, then dropping combining
marks) changes none of them either; only the compatibility ideographs (U+F900-FAFF) become their unified
twins, as in BERT.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BertTokenizerFast, PreTrainedTokenizerBase

from .chinese import count_cjk

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def iter_text_batches(dataset, batch_size: int = 1000, limit: int | None = None) -> Iterator[list[str]]:
    """Batches of the `text` column, read from the Arrow file without loading it whole."""
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, total, batch_size):
        yield dataset[start:min(start + batch_size, total)]["text"]


def train_tokenizer(batches: Iterable[list[str]], vocab_size: int, lowercase: bool = True) -> BertTokenizerFast:
    """Train a BERT-style WordPiece tokenizer on batches of texts."""
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be larger than the {len(SPECIAL_TOKENS)} special tokens")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=lowercase, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                        continuing_subword_prefix="##", min_frequency=2)
    tok.train_from_iterator(batches, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def tokenizer_report(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_seq_length: int,
                     batch_size: int = 64) -> dict:
    """What a user should know before launch: how often the tokenizer gives up ([UNK]), how many documents are
    longer than one training sequence, and for Chinese (or any script) how much *text* is lost.

    `unk_rate` counts [UNK] tokens among tokens. `unknown_character_rate` counts the characters that became
    [UNK] among all characters of the sample: for Chinese, where a token is a character, the two are close;
    for English one [UNK] can swallow a long word (WordPiece gives up on the whole word). It needs a fast
    tokenizer (offsets); with a slow one it is None. `cjk_share` is the share of the sample's characters that
    are CJK ideographs. The texts are encoded `batch_size` at a time: a sample of millions of characters would
    otherwise hold millions of ids and offsets as Python objects at once."""
    with_offsets = bool(tokenizer.is_fast)
    unk_id = tokenizer.unk_token_id
    characters = cjk = tokens = unknown = unknown_chars = long_docs = 0
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        characters += sum(map(len, batch))
        cjk += sum(map(count_cjk, batch))
        encoded = tokenizer(batch, add_special_tokens=True, return_offsets_mapping=with_offsets)
        for i, ids in enumerate(encoded["input_ids"]):
            tokens += len(ids)
            long_docs += len(ids) > max_seq_length
            if unk_id is None or unk_id not in ids:
                continue
            unknown += ids.count(unk_id)
            if with_offsets:
                spans = np.asarray(encoded["offset_mapping"][i]).reshape(-1, 2)[np.asarray(ids) == unk_id]
                unknown_chars += int((spans[:, 1] - spans[:, 0]).sum())
    documents = len(texts)
    return {
        "unk_rate": unknown / max(tokens, 1),
        "unknown_character_rate": unknown_chars / max(characters, 1) if with_offsets else None,
        "cjk_share": cjk / max(characters, 1),
        "long_document_share": long_docs / max(documents, 1),
        "documents_sampled": documents,
        "tokens_sampled": tokens,
        "characters_sampled": characters,
        "mean_tokens_per_document": tokens / max(documents, 1),
    }

"""WordPiece tokenizer training on a corpus, and the pre-launch tokenizer report.

`train_tokenizer` streams the memory-mapped corpus into the `tokenizers`
WordPiece trainer (BERT's normaliser and pre-tokeniser) and wraps the result
as a `transformers` BertTokenizer, so it saves and reloads with
`save_pretrained` / `AutoTokenizer` like any Hugging Face tokenizer.
"""

from __future__ import annotations

from typing import Iterable, Iterator

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


def tokenizer_report(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_seq_length: int) -> dict:
    """What a user should know before launch: how often the tokenizer gives up ([UNK]) and
    how many documents are longer than one training sequence."""
    if not texts:
        return {"unk_rate": 0.0, "long_document_share": 0.0, "documents_sampled": 0, "tokens_sampled": 0}
    encoded = tokenizer(texts, add_special_tokens=True)["input_ids"]
    unk_id = tokenizer.unk_token_id
    tokens = sum(len(ids) for ids in encoded)
    unknown = sum(ids.count(unk_id) for ids in encoded) if unk_id is not None else 0
    long_docs = sum(len(ids) > max_seq_length for ids in encoded)
    return {
        "unk_rate": unknown / max(tokens, 1),
        "long_document_share": long_docs / len(encoded),
        "documents_sampled": len(encoded),
        "tokens_sampled": tokens,
        "mean_tokens_per_document": tokens / len(encoded),
    }

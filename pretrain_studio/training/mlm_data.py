"""MLM training data: held-out split, corpus tokenizer and packed blocks, each built once per input.

Packing concatenates documents (separated by [SEP]) and cuts them into full
blocks of `max_seq_length` tokens, so every position is a real token and no
compute goes to padding. Tokenising and packing a large corpus, and training
its WordPiece tokenizer, take minutes; both are cached in the workspace's
`cache/` folder under a key made from everything they depend on (the corpus's
Arrow fingerprint, the split, the tokenizer's full JSON, the block length). A
second run on the same corpus and settings starts training at once. Entries
are built in a private temporary folder and renamed into place, so two runs
preparing the same data at once never see a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import datasets
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ..data.tokenizer import iter_text_batches, train_tokenizer

DONE = "complete.json"  # written last: an entry without it is unfinished and ignored


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def held_out_split(corpus: datasets.Dataset, eval_fraction: float, seed: int, work_dir: Path) -> datasets.DatasetDict:
    """Training and held-out documents. The split is by document, before packing, so that no held-out text
    leaks into a training block."""
    if len(corpus) < 2:
        raise ValueError("the corpus needs at least 2 documents to hold some out for evaluation")
    work_dir.mkdir(parents=True, exist_ok=True)
    return corpus.train_test_split(
        test_size=eval_fraction, seed=seed,
        train_indices_cache_file_name=str(work_dir / "train_indices.arrow"),
        test_indices_cache_file_name=str(work_dir / "eval_indices.arrow"),
    )


def split_fingerprint(corpus: datasets.Dataset, eval_fraction: float, seed: int) -> list:
    """What the training and held-out documents depend on: the corpus (its Arrow fingerprint, written at
    ingest) and the split. Part of every cache key below."""
    return [corpus._fingerprint, len(corpus), eval_fraction, seed]


def build_once(folder: Path, build) -> Path:
    """Return `folder`, calling `build(tmp_folder)` first if no complete entry is there yet."""
    if (folder / DONE).exists():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summary = build(tmp) or {}
        (tmp / DONE).write_text(json.dumps(summary))
        shutil.rmtree(folder, ignore_errors=True)  # an unfinished entry left by a crash
        try:
            os.replace(tmp, folder)
        except OSError:  # another run finished the same entry first; theirs is as good as ours
            if not (folder / DONE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def corpus_tokenizer(train_docs: datasets.Dataset, fingerprint: list, vocab_size: int, lowercase: bool,
                     cache_dir: Path) -> tuple[PreTrainedTokenizerBase, bool]:
    """(WordPiece tokenizer trained on the training documents, whether it came from the cache)."""
    folder = cache_dir / f"tokenizer-{cache_key(fingerprint, vocab_size, lowercase)}"
    hit = (folder / DONE).exists()

    def build(tmp: Path):
        train_tokenizer(iter_text_batches(train_docs), vocab_size, lowercase).save_pretrained(tmp)

    build_once(folder, build)
    return AutoTokenizer.from_pretrained(folder), hit


def block_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """The ids that open and close a block: [CLS]/[SEP], or <s>/</s> for RoBERTa-style tokenizers."""
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return cls_id, sep_id


def pack_function(tokenizer: PreTrainedTokenizerBase, max_seq_length: int):
    """A batched `datasets.map` function: texts -> full blocks of `max_seq_length` ids. The tail of a batch
    that does not fill a block is dropped (at most one block's worth per 1,000 documents)."""
    body = max_seq_length - 2  # room for [CLS] ... [SEP]
    cls_id, sep_id = block_ids(tokenizer)

    def pack(batch):
        stream: list[int] = []
        for ids in tokenizer(batch["text"], add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
            stream.append(sep_id)
        return {"input_ids": [[cls_id, *stream[i:i + body], sep_id] for i in range(0, len(stream) - body + 1, body)]}

    return pack


def packed_blocks(split: datasets.DatasetDict, fingerprint: list, tokenizer: PreTrainedTokenizerBase,
                  max_seq_length: int, cache_dir: Path) -> tuple[datasets.Dataset, datasets.Dataset, bool]:
    """(training blocks, held-out blocks, whether they came from the cache), memory-mapped from `cache_dir`."""
    key = cache_key(fingerprint, tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else
                    sorted(tokenizer.get_vocab().items()), max_seq_length)
    folder = cache_dir / f"blocks-{key}"
    hit = (folder / DONE).exists()
    pack = pack_function(tokenizer, max_seq_length)

    def build(tmp: Path):
        for name, docs in (("train", split["train"]), ("eval", split["test"])):
            blocks = docs.map(pack, batched=True, batch_size=1000, remove_columns=docs.column_names,
                              cache_file_name=str(tmp / f"{name}.arrow"), desc=f"packing {name}")
            del blocks  # release the file before the folder is renamed

    build_once(folder, build)
    return (datasets.Dataset.from_file(str(folder / "train.arrow")),
            datasets.Dataset.from_file(str(folder / "eval.arrow")), hit)

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

A large split is tokenised and packed by several processes (`datasets.map`
with `num_proc`, chosen by the split's size); the blocks are the same, id for
id and in the same order, whatever the number of processes (see
`pack_documents`). Nothing here holds a corpus in memory: documents are read
from the memory-mapped Arrow files a batch at a time, and blocks are written
to Arrow files as they are made.

With Chinese whole-word masking on, each block also stores a `word_start` column (1 where a token begins a
word, found by jieba for CJK characters and by the "##" rule for other tokens; see data/chinese.py), which the
masking collator reads. Segmenting costs time at packing (jieba segments about 0.28 M characters, 0.8 MB of
UTF-8 Chinese, a second per process, measured on Hongloumeng), once per corpus: the option is part of the cache
key. With it off, the blocks and their
cache key are exactly what they were before the option existed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
from pathlib import Path

import datasets
import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ..data.chinese import chinese_word_starts
from ..data.tokenizer import train_tokenizer
from .masking import continuation_tokens

DONE = "complete.json"  # written last: an entry without it is unfinished and ignored
PACK_BATCH_DOCS = 1000  # documents packed together; each batch drops its own tail that does not fill a block
MIN_BYTES_PER_PROCESS = 8_000_000  # text per packing process below which another process does not pay
BLOCK_FEATURES = datasets.Features({"input_ids": datasets.List(datasets.Value("int64"))})  # as inferred before
WORD_BLOCK_FEATURES = datasets.Features({"input_ids": datasets.List(datasets.Value("int64")),
                                        "word_start": datasets.List(datasets.Value("int8"))})


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


MAX_SPLIT_RUNS = 2000  # the corpus is cut into at most this many runs of consecutive documents for the split


def held_out_split(corpus: datasets.Dataset, eval_fraction: float, seed: int) -> datasets.DatasetDict:
    """Training and held-out documents. The split is by document, before packing, so that no held-out text
    leaks into a training block.

    The corpus is cut into at most MAX_SPLIT_RUNS runs of consecutive documents, and a seeded random
    `eval_fraction` of the runs is held out (with fewer documents than that, each run is one document).
    Both sides are slices of the memory-mapped corpus joined in order, with no index mapping: datasets'
    `train_test_split` holds a permutation of every document and copies of it, about 60 bytes a document
    (440 MB for 7.4 million; bench/ingest_tokenise.py), where this holds a few bytes a run. Held-out runs
    also keep neighbouring paragraphs of one text together on the held-out side."""
    n = len(corpus)
    if n < 2:
        raise ValueError("the corpus needs at least 2 documents to hold some out for evaluation")
    runs = min(n, MAX_SPLIT_RUNS)
    bounds = np.linspace(0, n, runs + 1).astype(np.int64)  # run r holds documents bounds[r] .. bounds[r + 1] - 1
    held = max(1, min(runs - 1, math.ceil(runs * eval_fraction)))
    chosen = np.zeros(runs, dtype=bool)
    chosen[np.random.default_rng(seed).choice(runs, size=held, replace=False)] = True
    return datasets.DatasetDict(train=_join_runs(corpus, bounds, ~chosen), test=_join_runs(corpus, bounds, chosen))


def _join_runs(corpus: datasets.Dataset, bounds: np.ndarray, picked: np.ndarray) -> datasets.Dataset:
    """The picked runs as one dataset: neighbouring picked runs become one contiguous slice."""
    parts, r = [], 0
    while r < len(picked):
        if not picked[r]:
            r += 1
            continue
        start = r
        while r < len(picked) and picked[r]:
            r += 1
        parts.append(corpus.select(range(int(bounds[start]), int(bounds[r]))))  # contiguous: no index mapping
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def split_fingerprint(corpus: datasets.Dataset, eval_fraction: float, seed: int) -> list:
    """What the training and held-out documents depend on: the corpus (its Arrow fingerprint, written at
    ingest) and the split. Part of every cache key below."""
    return [corpus._fingerprint, len(corpus), eval_fraction, seed, "runs"]  # "runs": the split by runs


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


TOKENIZER_SAMPLE_BYTES = 100_000_000  # text the WordPiece trainer sees at most; see sampled_text_batches


def sampled_text_batches(docs: datasets.Dataset, max_bytes: int = TOKENIZER_SAMPLE_BYTES, batch_size: int = 1000):
    """Batches of documents spread evenly over `docs`, about `max_bytes` of text in all (every batch when the
    documents hold less). The WordPiece trainer's memory grows with the text it counts (bench/ingest_tokenise.py:
    2.2x the peak for 500 MB of text as for 50 MB), and a vocabulary of a few thousand pieces is settled long
    before 100 MB; a sample spread over the whole corpus, not its first 100 MB, keeps it representative."""
    batches = range(0, len(docs), batch_size)
    stride = max(1, -(-text_bytes(docs) // max_bytes))  # ceil: every stride-th batch
    for start in batches[::stride]:
        yield docs[start:start + batch_size]["text"]


def corpus_tokenizer(train_docs: datasets.Dataset, fingerprint: list, vocab_size: int, lowercase: bool,
                     cache_dir: Path) -> tuple[PreTrainedTokenizerBase, bool]:
    """(WordPiece tokenizer trained on (a sample of at most TOKENIZER_SAMPLE_BYTES of) the training documents,
    whether it came from the cache)."""
    folder = cache_dir / f"tokenizer-{cache_key(fingerprint, vocab_size, lowercase, TOKENIZER_SAMPLE_BYTES)}"
    hit = (folder / DONE).exists()

    def build(tmp: Path):
        train_tokenizer(sampled_text_batches(train_docs), vocab_size, lowercase).save_pretrained(tmp)

    build_once(folder, build)
    return AutoTokenizer.from_pretrained(folder), hit


def block_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """The ids that open and close a block: [CLS]/[SEP], or <s>/</s> for RoBERTa-style tokenizers."""
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return cls_id, sep_id


def pack_function(tokenizer: PreTrainedTokenizerBase, max_seq_length: int, chinese_words: bool = False):
    """Texts -> full blocks of `max_seq_length` ids. The tail of a batch that does not fill a block is dropped
    (at most one block's worth per batch of PACK_BATCH_DOCS documents). `chinese_words`: also each block's
    `word_start` flags (the same ids in the same blocks as without it)."""
    body = max_seq_length - 2  # room for [CLS] ... [SEP]
    cls_id, sep_id = block_ids(tokenizer)
    if chinese_words:
        return word_pack_function(tokenizer, body, cls_id, sep_id)

    def pack(batch):
        stream: list[int] = []
        for ids in tokenizer(batch["text"], add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
            stream.append(sep_id)
        return {"input_ids": [[cls_id, *stream[i:i + body], sep_id] for i in range(0, len(stream) - body + 1, body)]}

    return pack


def word_pack_function(tokenizer: PreTrainedTokenizerBase, body: int, cls_id: int, sep_id: int):
    """`pack_function` with Chinese word starts: the ids are tokenised with their character offsets, which
    place each token in its jieba word."""
    if not tokenizer.is_fast:
        raise ValueError("chinese_whole_word_mask needs a fast tokenizer (character offsets)")
    continuation = continuation_tokens(tokenizer).numpy()

    def pack(batch):
        stream: list[int] = []
        starts: list[int] = []
        encoded = tokenizer(batch["text"], add_special_tokens=False, return_offsets_mapping=True)
        for text, ids, offsets in zip(batch["text"], encoded["input_ids"], encoded["offset_mapping"]):
            stream.extend(ids)
            starts.extend(chinese_word_starts(text, offsets, continuation[ids]))
            stream.append(sep_id)
            starts.append(1)
        cuts = range(0, len(stream) - body + 1, body)
        # A block's first token begins a word even when a word was cut at the block's edge: its other half is in
        # the block before, and [CLS] must not swallow it (a word joined to [CLS] would never be masked).
        return {"input_ids": [[cls_id, *stream[i:i + body], sep_id] for i in cuts],
                "word_start": [[1, 1, *starts[i + 1:i + body], 1] for i in cuts]}

    return pack


def text_bytes(docs: datasets.Dataset) -> int:
    """About how many bytes of text `docs` holds, from the Arrow buffers' sizes (no text is read). Under an
    indices mapping (a `select` of scattered rows) the table is the whole corpus's: its share is its share of rows."""
    table = docs.data  # the whole table under any indices mapping
    return table.nbytes * len(docs) // max(table.num_rows, 1)


def packing_processes(docs: datasets.Dataset) -> int:
    """How many processes should pack `docs`: one per MIN_BYTES_PER_PROCESS of text, at most one per CPU.

    A worker costs about 0.2 s to start (a fork, the tokenizer and the dataset pickled to it) and 90-125 MB
    of memory of its own; one process packs 2 to 4 MB of text a second. With at least 8 MB each, a worker has
    several seconds of work, so its start-up is a few per cent. Measured on a shared 2-core machine, 10 MB
    packed in 3.7-4.2 s with two processes against 5.1-6.6 s with one (whose Rust tokenizer already uses
    both cores while encoding), for 7% more CPU time. The tests' and a first try's small corpora stay in one
    process: no fork at all."""
    cpus = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process may run on (a container's share)
        cpus = min(cpus, len(os.sched_getaffinity(0)))
    return max(1, min(cpus, text_bytes(docs) // MIN_BYTES_PER_PROCESS))


def pack_documents(docs: datasets.Dataset, pack, path: Path, num_proc: int, fingerprint: str,
                   desc: str, features: datasets.Features = BLOCK_FEATURES) -> list[str]:
    """Pack `docs` into Arrow file(s) at `path` (one per process); return their names, in order.

    The unit of work is one batch of PACK_BATCH_DOCS consecutive documents: `datasets.map` runs over a small
    table of batch starts, one row per batch, and each row reads its documents from the memory-mapped corpus.
    `map(num_proc=N)` cuts its input into N contiguous shards of rows; had it run over the documents
    themselves, a batch would straddle two shards wherever a shard's length is not a multiple of the batch
    size, and the dropped tails (so the blocks) would depend on N. Over batch starts, every process packs the
    very batches one process would, and the shards are concatenated in order: the same blocks, ids and order
    whatever N is."""
    batch = PACK_BATCH_DOCS  # read once here: the workers use the value the parent had
    starts = datasets.Dataset.from_dict({"start": list(range(0, len(docs), batch))})
    num_proc = max(1, min(num_proc, len(starts)))

    def pack_batch(rows):  # batch_size=1: one row, one batch of documents
        start = rows["start"][0]
        return pack(docs[start:start + batch])

    blocks = starts.map(pack_batch, batched=True, batch_size=1, remove_columns=["start"], features=features,
                        num_proc=num_proc if num_proc > 1 else None, cache_file_name=str(path),
                        new_fingerprint=fingerprint, load_from_cache_file=False, desc=desc)
    files = [Path(f["filename"]).name for f in blocks.cache_files]
    del blocks  # release the files before the folder is renamed
    return files


def packed_blocks(split: datasets.DatasetDict, fingerprint: list, tokenizer: PreTrainedTokenizerBase,
                  max_seq_length: int, cache_dir: Path, num_proc: int | None = None,
                  chinese_words: bool = False) -> tuple[datasets.Dataset, datasets.Dataset, bool]:
    """(training blocks, held-out blocks, whether they came from the cache), memory-mapped from `cache_dir`.

    `num_proc`: processes that tokenise and pack; None chooses by the size of each split (`packing_processes`).
    The blocks are the same whatever it is, so it is not part of the cache key. `chinese_words`: blocks also
    carry `word_start` (Chinese whole-word masking); only then is it part of the key, so entries made without
    it keep their key."""
    extra = ["chinese_words"] if chinese_words else []
    key = cache_key(fingerprint, tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else
                    sorted(tokenizer.get_vocab().items()), max_seq_length, *extra)
    folder = cache_dir / f"blocks-{key}"
    hit = (folder / DONE).exists()
    pack = pack_function(tokenizer, max_seq_length, chinese_words)
    features = WORD_BLOCK_FEATURES if chinese_words else BLOCK_FEATURES

    def build(tmp: Path):
        files = {}
        for name, docs in (("train", split["train"]), ("eval", split["test"])):
            procs = num_proc or packing_processes(docs)
            files[name] = pack_documents(docs, pack, tmp / f"{name}.arrow", procs, f"{key}-{name}",
                                         f"packing {name}", features)
        return {"files": files}  # complete.json lists each split's files: one, or one per process

    build_once(folder, build)
    # Entries written before packing could use several processes have no file list: one file per split.
    files = json.loads((folder / DONE).read_text() or "{}").get("files") or {"train": ["train.arrow"],
                                                                             "eval": ["eval.arrow"]}
    train, eval_ = (load_blocks(folder, files[name], features) for name in ("train", "eval"))
    return train, eval_, hit


def load_blocks(folder: Path, names: list[str], features: datasets.Features = BLOCK_FEATURES) -> datasets.Dataset:
    """One split's blocks, memory-mapped from its file(s) in the cache entry."""
    parts = [datasets.Dataset.from_file(str(folder / name)) for name in names]
    if not parts:  # a split with no documents: `map` wrote no file
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


NO_CONTEXT_MAX_BLOCKS = 20_000  # training blocks counted for the frequencies: a few million tokens is plenty


def no_context_loss(train_blocks: datasets.Dataset, masked_eval_blocks: datasets.Dataset,
                    tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> float:
    """The MLM loss, in nats, of a model that ignores the context: every masked held-out token predicted from its
    frequency in the training blocks alone (the unigram cross-entropy, add-one smoothed). An eval loss near this
    line means the model has learned word frequencies and little else; the distance below it is what it has
    learned from context. Special tokens are never masked, so they are left out of the counts."""
    vocab = len(tokenizer)
    picked = np.arange(len(train_blocks))
    if len(picked) > NO_CONTEXT_MAX_BLOCKS:
        picked = np.sort(np.random.default_rng(seed).choice(len(picked), NO_CONTEXT_MAX_BLOCKS, replace=False))
    counts = np.zeros(vocab, dtype=np.int64)
    ids = train_blocks.select_columns(["input_ids"]).with_format("numpy")
    for start in range(0, len(picked), 1000):
        chunk = np.asarray(ids[picked[start:start + 1000]]["input_ids"])
        counts += np.bincount(chunk.ravel(), minlength=vocab)[:vocab]
    counts[[i for i in tokenizer.all_special_ids if i < vocab]] = 0
    probabilities = (counts + 1) / (counts.sum() + vocab)
    labels = np.concatenate([np.asarray(row) for row in masked_eval_blocks["labels"]])
    labels = labels[labels >= 0]
    return float(-np.log(probabilities[labels]).mean()) if len(labels) else math.nan

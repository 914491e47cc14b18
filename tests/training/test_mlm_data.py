"""The workspace cache of tokenizers and packed blocks: built once, never seen half-written, and the same blocks
whether one process packs them or several."""

import json
import os
import threading
import time

import pytest
from conftest import CHESTERTON, MOBY_DICK, SAMPLE_CORPUS

from pretrain_studio.data.corpus import ingest_corpus, load_corpus
from pretrain_studio.data.tokenizer import iter_text_batches, train_tokenizer
from pretrain_studio.training import mlm_data
from pretrain_studio.training.mlm_data import (DONE, build_once, cache_key, held_out_split, pack_function,
                                               packed_blocks, packing_processes, split_fingerprint, text_bytes)


def test_two_runs_building_the_same_entry_at_once_get_one_complete_entry(tmp_path):
    calls = []

    def build(tmp):
        calls.append(tmp)
        time.sleep(0.3)  # both threads are inside build at the same time
        (tmp / "data.txt").write_text(f"built in {tmp.name}")

    folder = tmp_path / "blocks-abc"
    threads = [threading.Thread(target=build_once, args=(folder, build)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (folder / DONE).exists() and (folder / "data.txt").read_text().startswith("built in")
    assert [p.name for p in tmp_path.iterdir()] == ["blocks-abc"]  # no temporary folder left behind
    build_once(folder, lambda tmp: calls.append("again"))
    assert "again" not in calls  # a complete entry is reused, not rebuilt


def test_an_entry_left_unfinished_by_a_crash_is_rebuilt(tmp_path):
    folder = tmp_path / "tokenizer-abc"
    folder.mkdir()
    (folder / "half.json").write_text("{")  # no completion marker: the build died midway
    build_once(folder, lambda tmp: (tmp / "vocab.txt").write_text("[PAD]"))
    assert (folder / DONE).exists() and (folder / "vocab.txt").exists() and not (folder / "half.json").exists()


def test_the_key_changes_with_every_input():
    base = cache_key("fingerprint", 8000, True)
    assert base == cache_key("fingerprint", 8000, True)
    assert len({base, cache_key("fingerprint", 8001, True), cache_key("other", 8000, True),
                cache_key("fingerprint", 8000, False)}) == 4


# --------------------------------------------------------------------------- packing, in one process or several


@pytest.fixture(scope="module")
def wiki_split(tmp_path_factory):
    """Three real books as a corpus (Moby Dick's start, Persuasion, a part of Chesterton: about 6,000 line
    documents, 390 KB), its held-out split and a tokenizer."""
    folder = tmp_path_factory.mktemp("packing")
    ingest_corpus([MOBY_DICK, SAMPLE_CORPUS, CHESTERTON], folder / "corpus")
    corpus = load_corpus(folder / "corpus")
    split = held_out_split(corpus, 0.05, 1)
    fingerprint = split_fingerprint(corpus, 0.05, 1)
    tokenizer = train_tokenizer(iter_text_batches(split["train"]), 2000)
    return split, fingerprint, tokenizer


def reference_blocks(docs, tokenizer, max_seq_length: int, batch: int) -> list[list[int]]:
    """The packing rule spelled out: consecutive batches of `batch` documents, each packed on its own."""
    pack = pack_function(tokenizer, max_seq_length)
    return [ids for start in range(0, len(docs), batch) for ids in pack(docs[start:start + batch])["input_ids"]]


def test_several_processes_pack_exactly_the_blocks_one_process_packs(wiki_split, tmp_path, monkeypatch):
    split, fingerprint, tokenizer = wiki_split
    # Batches of 100 documents: 58 training batches, so each of 2 or 3 processes packs several, and an even
    # split of the 5,704 training documents between processes (2,852 each) would cut a batch in two.
    monkeypatch.setattr(mlm_data, "PACK_BATCH_DOCS", 100)
    expected = reference_blocks(split["train"], tokenizer, 64, 100)
    expected_eval = reference_blocks(split["test"], tokenizer, 64, 100)
    for num_proc in (1, 2, 3):
        train, held_out, hit = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path / f"p{num_proc}",
                                             num_proc=num_proc)
        assert not hit
        assert train["input_ids"] == expected, f"num_proc={num_proc}"
        assert held_out["input_ids"] == expected_eval, f"num_proc={num_proc}"
        entry = next((tmp_path / f"p{num_proc}").glob("blocks-*"))
        listed = json.loads((entry / DONE).read_text())["files"]["train"]
        assert len(listed) == num_proc and all((entry / name).is_file() for name in listed)
    assert len(expected) > 1000 and all(len(ids) == 64 for ids in expected)


def test_a_second_call_is_a_cache_hit_that_tokenises_nothing_and_rewrites_nothing(wiki_split, tmp_path,
                                                                                  monkeypatch):
    split, fingerprint, tokenizer = wiki_split
    train, held_out, hit = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path, num_proc=2)
    assert not hit
    entry = next(tmp_path.glob("blocks-*"))
    files_before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entry.iterdir()}

    calls = []
    original = type(tokenizer).__call__
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    again, held_out_again, hit = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path)
    assert hit and calls == []
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entry.iterdir()} == files_before
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]  # no second entry, no temporary folder
    assert again["input_ids"] == train["input_ids"] and held_out_again["input_ids"] == held_out["input_ids"]


def test_an_entry_written_before_packing_used_processes_is_still_read(wiki_split, tmp_path):
    split, fingerprint, tokenizer = wiki_split
    train, held_out, _ = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path, num_proc=1)
    entry = next(tmp_path.glob("blocks-*"))
    assert sorted(p.name for p in entry.iterdir()) == [DONE, "eval.arrow", "train.arrow"]
    (entry / DONE).write_text("{}")  # what the single-process version wrote: no file list
    again, held_out_again, hit = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path)
    assert hit and again["input_ids"] == train["input_ids"] and len(held_out_again) == len(held_out)


def test_small_splits_are_packed_in_one_process_large_ones_in_up_to_one_per_cpu(wiki_split, monkeypatch):
    split, _, _ = wiki_split
    train = split["train"]
    assert 300_000 < text_bytes(train) < 450_000  # the three books are 390 KB, 95% of them here
    assert packing_processes(train) == 1
    monkeypatch.setattr(mlm_data, "MIN_BYTES_PER_PROCESS", 1)
    assert packing_processes(train) == min(os.cpu_count(), len(os.sched_getaffinity(0)))

"""The workspace cache of tokenizers and packed blocks: built once, never seen half-written."""

import threading
import time

from pretrain_studio.training.mlm_data import DONE, build_once, cache_key


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

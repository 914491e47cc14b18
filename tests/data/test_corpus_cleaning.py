"""Cleaner data (issue 16): exact duplicates removed at ingest by default (and counted), the optional filters
(Project Gutenberg header and licence, boilerplate lines, near-duplicates), the held-out split taken after
de-duplication, the CLI flag, and the corpus page's removed counts in English and Chinese.

The Gutenberg samples are real: tests/data/gutenberg_amy_foster.txt (today's layout, markers and licence) and
tests/data/gutenberg_faith_of_men_1990s.txt (the 1990s "SMALL PRINT!" layout), cut by tests/data/build_files.py.
The API parameter is tested in tests/e2e/test_api.py, beside the app server it needs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import MOBY_DICK, TEST_DATA, require

from pretrain_studio import cli
from pretrain_studio.data import cleaning as cleaning_module
from pretrain_studio.data import corpus as corpus_module
from pretrain_studio.data.cleaning import (
    BOILERPLATE_MIN_LETTER_SHARE,
    BOILERPLATE_MIN_LETTERS,
    is_boilerplate_line,
)
from pretrain_studio.data.corpus import CorpusError, ingest_corpus, load_corpus
from pretrain_studio.training.mlm_data import held_out_split

AMY_FOSTER = TEST_DATA / "gutenberg_amy_foster.txt"  # UTF-8, CRLF
FAITH_OF_MEN = TEST_DATA / "gutenberg_faith_of_men_1990s.txt"  # ASCII, CRLF
AMY_START = "*** START OF THIS PROJECT GUTENBERG EBOOK AMY FOSTER ***"
AMY_END = "*** END OF THIS PROJECT GUTENBERG EBOOK AMY FOSTER ***"


def ingest(tmp_path: Path, files, **kwargs):
    dest = tmp_path / "corpus"
    stats = ingest_corpus(files, dest, **kwargs)
    return stats, list(load_corpus(dest)["text"])


def moby_lines(n: int | None = None) -> list[str]:
    """The stripped non-empty lines of the Moby Dick sample (it has repeats: "CHAPTER" headings, blank-ish lines)."""
    lines = [line.strip() for line in MOBY_DICK.read_bytes().decode("ascii").splitlines() if line.strip()]
    return lines[:n] if n else lines


def first_occurrences(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- exact duplicates -------------------------------------------------------------------------------------------


def test_exact_duplicates_are_removed_by_default_and_counted(tmp_path):
    lines = moby_lines()
    unique = first_occurrences(lines)
    assert len(unique) < len(lines)  # the real sample repeats lines: the point of this test
    stats, docs = ingest(tmp_path, [MOBY_DICK])
    assert docs == unique  # the first occurrence stays, in order
    assert stats.documents == len(unique)
    assert stats.duplicate_documents == stats.removed["exact_duplicates"] == len(lines) - len(unique)
    assert stats.removed == {"exact_duplicates": len(lines) - len(unique), "near_duplicates": 0,
                             "boilerplate_lines": 0, "gutenberg_boilerplate": 0}
    # The other counts describe the documents that were kept.
    assert stats.characters == sum(len(d) for d in unique)
    assert stats.words == sum(len(d.split()) for d in unique)
    assert sum(stats.length_histogram["counts"]) == len(unique)
    assert stats.cleaning["dedupe"] is True


def test_dedupe_false_keeps_exact_duplicates_but_still_counts_them(tmp_path):
    lines = moby_lines()
    stats, docs = ingest(tmp_path, [MOBY_DICK], dedupe=False)
    assert docs == lines and stats.documents == len(lines)
    assert stats.duplicate_documents == len(lines) - len(set(lines))
    assert stats.removed["exact_duplicates"] == 0
    assert stats.characters == sum(len(d) for d in lines)


def test_duplicates_across_files_batches_and_spilled_buffers(tmp_path, monkeypatch):
    """Repeats are found across files and across spilled hash buffers, and dropped across Arrow batches; a file
    that only repeats earlier ones is no error (its documents are counted as removed)."""
    monkeypatch.setattr(cleaning_module, "DIGEST_BUFFER", 37)
    monkeypatch.setattr(corpus_module, "_BATCH_DOCS", 50)
    lines = moby_lines(900)
    first = write_lines(tmp_path / "first.txt", lines)
    again = write_lines(tmp_path / "again.txt", lines[::-1])
    stats, docs = ingest(tmp_path, [first, again])
    unique = first_occurrences(lines)
    assert docs == unique
    assert stats.removed["exact_duplicates"] == 2 * len(lines) - len(unique)
    stats, docs = ingest(tmp_path / "kept", [first, again], dedupe=False)
    assert docs == lines + lines[::-1]


def test_duplicates_are_exact_after_stripping(tmp_path):
    """The same text after surrounding whitespace is stripped is a duplicate; a change of case is not."""
    path = write_lines(tmp_path / "d.txt", ["Call me Ishmael.", "   Call me Ishmael.  ", "call me Ishmael."])
    stats, docs = ingest(tmp_path, [path])
    assert docs == ["Call me Ishmael.", "call me Ishmael."] and stats.removed["exact_duplicates"] == 1


def test_dedupe_must_be_a_boolean(tmp_path):
    with pytest.raises(CorpusError, match="dedupe must be true or false"):
        ingest_corpus([MOBY_DICK], tmp_path / "corpus", dedupe="no")


# --- the held-out split comes after de-duplication --------------------------------------------------------------


def test_a_document_duplicated_in_the_input_is_never_in_both_train_and_held_out(tmp_path):
    body = first_occurrences(moby_lines())[:400]
    repeated = "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about."
    lines = []
    for i, line in enumerate(body):
        lines.append(line)
        if i % 10 == 0:  # the same document 40 times, spread over the whole corpus
            lines.append(repeated)
    path = write_lines(tmp_path / "c.txt", lines)

    ingest_corpus([path], tmp_path / "clean")
    clean = load_corpus(tmp_path / "clean")
    for seed in range(5):
        split = held_out_split(clean, 0.1, seed)
        train, test = set(split["train"]["text"]), set(split["test"]["text"])
        assert len(train) + len(test) == len(clean)  # no text twice anywhere
        assert not train & test

    # Without de-duplication the same split leaks the repeated document into evaluation: what dedupe prevents.
    ingest_corpus([path], tmp_path / "raw", dedupe=False)
    split = held_out_split(load_corpus(tmp_path / "raw"), 0.1, 0)
    assert repeated in set(split["train"]["text"]) & set(split["test"]["text"])


# --- Project Gutenberg header and licence -----------------------------------------------------------------------


def amy_body() -> list[str]:
    """The lines of the Amy Foster sample strictly between its START and END OF ... markers, stripped, non-empty,
    without the "End of the Project Gutenberg EBook" line that precedes the END marker."""
    lines = [line.strip() for line in AMY_FOSTER.read_text(encoding="utf-8").splitlines()]
    body = lines[lines.index(AMY_START) + 1 : lines.index(AMY_END)]
    return [line for line in body if line and not line.startswith("End of the Project Gutenberg EBook")]


def test_strip_gutenberg_keeps_only_the_book(tmp_path):
    stats, docs = ingest(tmp_path, [AMY_FOSTER], strip_gutenberg=True)
    assert docs == amy_body()
    assert docs[0] == "Produced by Judith Boss and David Widger"
    assert docs[-1].endswith("in the supreme disaster of loneliness and despair.\u201d")
    assert not any("Gutenberg" in d or "LICENSE" in d or "eBook" in d for d in docs)
    all_lines = [line for line in AMY_FOSTER.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert stats.removed["gutenberg_boilerplate"] == len(all_lines) - len(docs)
    assert stats.gutenberg_files == 1 and stats.cleaning["strip_gutenberg"] is True


def test_strip_gutenberg_is_off_by_default(tmp_path):
    stats, docs = ingest(tmp_path, [AMY_FOSTER])
    assert AMY_START in docs and "*** START: FULL LICENSE ***" in docs
    assert stats.removed["gutenberg_boilerplate"] == 0 and stats.gutenberg_files == 0


def test_strip_gutenberg_in_paragraphs_mode(tmp_path):
    stats, docs = ingest(tmp_path, [AMY_FOSTER], strip_gutenberg=True, txt_mode="paragraphs")
    assert docs[:3] == ["Produced by Judith Boss and David Widger", "AMY FOSTER", "By Joseph Conrad"]
    # The sample joins the story's first lines to its last ones, with no blank line between: one paragraph.
    assert len(docs) == 4 and docs[3].startswith("Kennedy is a country doctor, and lives in Colebrook")
    assert docs[3].endswith("the sea to perish in the supreme disaster of loneliness and despair.\u201d")
    assert not any("Gutenberg" in d for d in docs)


@pytest.mark.parametrize("start, end", [
    ("*** START OF THIS PROJECT GUTENBERG EBOOK AMY FOSTER ***", "*** END OF THIS PROJECT GUTENBERG EBOOK AMY FOSTER ***"),
    # The other spelling, as 53 of the 140 pretrain_en books have it ('Twixt Land & Sea, Chance, ...).
    ("***START OF THE PROJECT GUTENBERG EBOOK AMY FOSTER***", "***END OF THE PROJECT GUTENBERG EBOOK AMY FOSTER***"),
])
def test_both_spellings_of_the_markers(tmp_path, start, end):
    text = AMY_FOSTER.read_text(encoding="utf-8").replace(AMY_START, start).replace(AMY_END, end)
    # Without the "End of the Project Gutenberg EBook" line, so that the END marker alone ends the book.
    text = "\n".join(line for line in text.splitlines() if not line.startswith("End of the Project Gutenberg"))
    path = tmp_path / "amy.txt"
    path.write_text(text, encoding="utf-8")
    _, docs = ingest(tmp_path, [path], strip_gutenberg=True)
    assert docs == amy_body()


def test_full_license_start_is_not_the_start_marker(tmp_path):
    """`*** START: FULL LICENSE ***` opens the licence after the book. Taken for the start marker, it would keep
    the licence and drop the book; with the real START marker gone, the file is a copy whose header was cut
    already (as in NLTK's): the text before the END marker is kept, the licence is not."""
    lines = AMY_FOSTER.read_text(encoding="utf-8").splitlines()
    no_start = tmp_path / "no_start.txt"
    no_start.write_text("\n".join(line for line in lines if line.strip() != AMY_START), encoding="utf-8")
    stats, docs = ingest(tmp_path, [no_start], strip_gutenberg=True)
    assert docs[0] == "The Project Gutenberg EBook of Amy Foster, by Joseph Conrad"  # header kept: no start marker
    assert docs[-1].endswith("loneliness and despair.\u201d")
    assert not any("LICENSE" in d or "Section 1." in d for d in docs)

    # The licence alone, with "*** START: FULL LICENSE ***" and no marker at all: left as is.
    licence = tmp_path / "licence.txt"
    licence.write_text("\n".join(lines[lines.index("*** START: FULL LICENSE ***") - 2 :]), encoding="utf-8")
    stats, docs = ingest(tmp_path / "licence", [licence], strip_gutenberg=True)
    assert docs[0] == "*** START: FULL LICENSE ***" and stats.removed["gutenberg_boilerplate"] == 0
    assert stats.gutenberg_files == 0


def test_old_small_print_layout(tmp_path):
    """The 1990s layout has no *** markers: its header ends at "*END*THE SMALL PRINT!", and the text ends at
    "End of The Project Gutenberg Etext of ..."."""
    stats, docs = ingest(tmp_path, [FAITH_OF_MEN], strip_gutenberg=True)
    assert docs[0] == "The Faith of Men" and "Contents:" in docs
    assert docs[-1] == "secretly she is but the prouder of him."
    assert not any("SMALL PRINT" in d.upper() or "Gutenberg" in d for d in docs)
    assert stats.gutenberg_files == 1 and stats.removed["gutenberg_boilerplate"] >= 20


def test_a_file_without_markers_is_left_as_is(tmp_path):
    stats, docs = ingest(tmp_path, [MOBY_DICK], strip_gutenberg=True)
    assert docs == first_occurrences(moby_lines())
    assert stats.removed["gutenberg_boilerplate"] == 0 and stats.gutenberg_files == 0


def test_strip_gutenberg_is_per_file(tmp_path):
    stats, docs = ingest(tmp_path, [AMY_FOSTER, MOBY_DICK], strip_gutenberg=True)
    assert docs == amy_body() + first_occurrences(moby_lines())
    assert stats.gutenberg_files == 1


def test_a_file_that_is_all_header_names_what_was_dropped(tmp_path):
    lines = AMY_FOSTER.read_text(encoding="utf-8").splitlines()
    header = tmp_path / "header.txt"
    header.write_text("\n".join(lines[: lines.index(AMY_START) + 1]), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"header\.txt: no documents found .*Project Gutenberg header"):
        ingest_corpus([header], tmp_path / "corpus", strip_gutenberg=True)


# --- boilerplate lines ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["23", "* * * * *", "IV.", "-----------", "[p. 4]", "1811    4,000   12s. 6d.",
                                  "   %%  ", "No."])
def test_boilerplate_lines(line):
    assert is_boilerplate_line(line)


@pytest.mark.parametrize("line", ["Yes.", "CHAPTER I.", "Chapter 12.", "Call me Ishmael.", "第一回",
                                  "ETYMOLOGY.", "", "   "])
def test_lines_that_are_not_boilerplate(line):
    assert not is_boilerplate_line(line)


def test_boilerplate_thresholds_are_the_documented_ones():
    assert (BOILERPLATE_MIN_LETTERS, BOILERPLATE_MIN_LETTER_SHARE) == (3, 0.5)
    assert is_boilerplate_line("ab") and not is_boilerplate_line("abc")
    assert not is_boilerplate_line("abc 1") and is_boilerplate_line("abc 1234")  # 3 letters of 4, of 7


TEXT_WITH_BOILERPLATE = [
    "CHAPTER 1. Loomings.", "", "Call me Ishmael. Some years ago--never mind how long", "* * * * *",
    "precisely--having little or no money in my purse,", "23", "", "-----", "", "and nothing particular to interest me.",
]


def test_drop_boilerplate_lines_in_lines_mode(tmp_path):
    path = write_lines(tmp_path / "b.txt", TEXT_WITH_BOILERPLATE)
    stats, docs = ingest(tmp_path, [path], drop_boilerplate_lines=True)
    assert docs == ["CHAPTER 1. Loomings.", "Call me Ishmael. Some years ago--never mind how long",
                    "precisely--having little or no money in my purse,", "and nothing particular to interest me."]
    assert stats.removed["boilerplate_lines"] == 3
    stats, docs = ingest(tmp_path / "off", [path])
    assert "* * * * *" in docs and stats.removed["boilerplate_lines"] == 0


def test_drop_boilerplate_lines_within_paragraphs(tmp_path):
    path = write_lines(tmp_path / "b.txt", TEXT_WITH_BOILERPLATE)
    stats, docs = ingest(tmp_path, [path], txt_mode="paragraphs", drop_boilerplate_lines=True)
    assert docs == ["CHAPTER 1. Loomings.",
                    "Call me Ishmael. Some years ago--never mind how long precisely--having little or no money in my "
                    "purse,", "and nothing particular to interest me."]  # the "-----" paragraph is gone
    assert stats.removed["boilerplate_lines"] == 3
    _, docs = ingest(tmp_path / "off", [path], txt_mode="paragraphs")
    assert "-----" in docs and any("* * * * *" in d for d in docs)


def test_boilerplate_lines_are_not_looked_for_in_other_formats(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "23"}\n{"text": "Call me Ishmael."}\n', encoding="utf-8")
    stats, docs = ingest(tmp_path, [path], drop_boilerplate_lines=True)
    assert docs == ["23", "Call me Ishmael."] and stats.removed["boilerplate_lines"] == 0


# --- near-duplicates --------------------------------------------------------------------------------------------


def test_near_duplicates(tmp_path):
    require("datasketch", importlib.util.find_spec("datasketch") is not None, "pip install datasketch")
    paragraphs = [" ".join(p.split()) for p in MOBY_DICK.read_text(encoding="ascii").split("\n\n")]
    paragraphs = first_occurrences([p for p in paragraphs if len(p.split()) >= 60])[:40]
    original = paragraphs[5]
    words = original.split()
    words[len(words) // 2] = "whale-ship"  # one word changed in 60 or more: Jaccard of the 5-shingles about 0.85+
    variant = " ".join(words)
    path = write_lines(tmp_path / "p.txt", paragraphs + [variant, original])
    stats, docs = ingest(tmp_path, [path], near_duplicates=True)
    assert docs == paragraphs
    assert stats.removed["exact_duplicates"] == 1 and stats.removed["near_duplicates"] == 1
    stats, docs = ingest(tmp_path / "off", [path])
    assert docs == paragraphs + [variant] and stats.removed["near_duplicates"] == 0
    # Without dedupe the exact repeat is a near-duplicate too (its similarity is 1).
    stats, docs = ingest(tmp_path / "nodedupe", [path], near_duplicates=True, dedupe=False)
    assert docs == paragraphs and stats.removed == {"exact_duplicates": 0, "near_duplicates": 2,
                                                    "boilerplate_lines": 0, "gutenberg_boilerplate": 0}


# --- the CLI flag and the corpus page ---------------------------------------------------------------------------


def test_cli_no_dedupe_flag(tmp_path, monkeypatch, capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["pretrain", "--corpus", "x.txt"]).dedupe is True
    assert parser.parse_args(["pretrain", "--corpus", "x.txt", "--no-dedupe"]).dedupe is False
    trained = []
    monkeypatch.setattr(cli, "train_foreground", lambda studio, values: trained.append(values) or 0)
    lines = moby_lines()
    for flags, expected in (([], len(set(lines))), (["--no-dedupe"], len(lines))):
        workspace = tmp_path / f"ws{len(flags)}"
        assert cli.main(["pretrain", "--corpus", str(MOBY_DICK), *flags, "--workspace", str(workspace)]) == 0
        out = capsys.readouterr().out
        assert f": {expected:,} documents" in out
        assert ("removed" in out) == (not flags)  # "; removed N exact duplicates"
    assert len(trained) == 2


def test_corpus_page_shows_what_cleaning_removed(tmp_path):
    from pretrain_studio.studio import Studio
    from pretrain_studio.ui.corpus_tab import describe_corpus
    from pretrain_studio.ui.i18n import use_language

    lines = moby_lines()
    repeats = len(lines) - len(set(lines))
    studio = Studio(tmp_path / "workspace", start_worker=False)
    try:
        corpus = studio.upload_corpus([MOBY_DICK], "moby", drop_boilerplate_lines=True)
        boilerplate = corpus["removed"]["boilerplate_lines"]
        assert corpus["removed"]["exact_duplicates"] > 0 and boilerplate > 0
        dups = corpus["removed"]["exact_duplicates"]
        with use_language("en"):
            summary = describe_corpus(studio, corpus["corpus_id"])[0]
        assert f"Cleaning removed {dups:,} exact duplicates · {boilerplate:,} boilerplate lines." in summary
        with use_language("zh"):
            summary = describe_corpus(studio, corpus["corpus_id"])[0]
        assert f"清洗删除了 {dups:,} 篇完全重复的文档 · {boilerplate:,} 个模板行。" in summary

        kept = studio.upload_corpus([MOBY_DICK], "moby raw", dedupe=False)
        assert kept["documents"] == len(lines) and kept["duplicate_documents"] == repeats
        with use_language("en"):
            assert "No cleaning: exact duplicates were kept." in describe_corpus(studio, kept["corpus_id"])[0]
        with use_language("zh"):
            assert "未清洗：完全重复的文档已保留。" in describe_corpus(studio, kept["corpus_id"])[0]
    finally:
        studio.close()

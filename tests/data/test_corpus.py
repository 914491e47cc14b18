"""Tests for pretrain_studio.data.corpus, on real files: the small ones in tests/data (CRLF and Latin-1
Gutenberg books, Chinese), and, marked `real_data`, the shared sets whose own layout is the point.

Each test checks something a user would notice: the wrong number of documents, mangled
characters, stray carriage returns, or a failed ingest that leaves half a corpus behind.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CHESTERTON, DATA, HONGLOUMENG, MOBY_DICK, NOVELS_ZH  # noqa: E402

from pretrain_studio.data.chinese import count_words
from pretrain_studio.data.corpus import (
    CorpusError,
    CorpusStats,
    ingest_corpus,
    load_corpus,
    preview_rows,
)

WIKI = DATA / "wikitext2_raw" / "wiki.test.raw"  # real_data
CHNSENTI = DATA / "chnsenticorp" / "ChnSentiCorp_htl_all.csv"  # real_data
TOUTIAO = DATA / "toutiao_news" / "train.csv"  # real_data


def ingest(tmp_path: Path, files, **kwargs) -> tuple[CorpusStats, list[str]]:
    """Ingest into a fresh folder and return the stats with every stored document."""
    dest = tmp_path / "corpus"
    stats = ingest_corpus(files, dest, **kwargs)
    return stats, list(load_corpus(dest)["text"])


def expect_error(tmp_path: Path, files, *fragments: str, **kwargs) -> str:
    """Ingest must fail with a message holding every fragment, and leave no corpus behind."""
    dest = tmp_path / "corpus"
    with pytest.raises(CorpusError) as info:
        ingest_corpus(files, dest, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"
    assert not dest.exists()
    # The temporary build folder must be gone too.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".corpus")] == []
    return message


def wiki_slice(tmp_path: Path, n_lines: int = 300, source: Path = MOBY_DICK) -> tuple[Path, list[str]]:
    """The first lines of a CRLF text (Moby Dick from tests/data, or WikiText-2) as a .txt file, and its
    non-empty lines."""
    raw = source.read_bytes()
    lines = raw.split(b"\r\n")[:n_lines]
    path = tmp_path / "wiki.txt"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    expected = [line.decode("utf-8").strip() for line in lines if line.strip()]
    return path, expected


# ------------------------------------------------------------------- plain text


@pytest.mark.parametrize("source", [MOBY_DICK, pytest.param(WIKI, marks=pytest.mark.real_data)],
                         ids=["moby_dick", "wikitext"])
def test_crlf_lines_mode_strips_crlf_and_keeps_every_line(tmp_path, source):
    path, expected = wiki_slice(tmp_path, source=source)
    # dedupe=False: every line, repeats included (WikiText's slice repeats two); de-duplication is
    # tests/data/test_corpus_cleaning.py's subject.
    stats, docs = ingest(tmp_path, [path], txt_mode="lines", dedupe=False)

    assert not any("\r" in doc for doc in docs)
    assert stats.documents == len(expected) == len(docs)
    assert docs == expected
    assert stats.encodings == {"wiki.txt": "utf-8"}
    assert stats.files == ["wiki.txt"]
    assert stats.characters == sum(len(d) for d in expected)
    assert stats.words == sum(count_words(d)[0] for d in expected)  # (WikiText's line 16 has CJK: 杜甫)
    assert preview_rows(tmp_path / "corpus", 5) == expected[:5]
    assert preview_rows(tmp_path / "corpus", 10_000) == expected


def test_preview_cuts_long_documents_to_max_chars(tmp_path):
    _, expected = ingest(tmp_path, [HONGLOUMENG])  # one paragraph a line, in characters, not bytes
    assert max(len(doc) for doc in expected) > 100  # the cut bites on real lines
    assert preview_rows(tmp_path / "corpus", 10_000, max_chars=100) == [doc[:100] for doc in expected]
    assert preview_rows(tmp_path / "corpus", 3, max_chars=0) == ["", "", ""]
    assert preview_rows(tmp_path / "corpus", 0, max_chars=100) == []


def test_preview_cuts_by_characters_not_bytes(tmp_path):
    path = tmp_path / "accents.txt"
    path.write_text("ééééé ààààà\nplain\n", encoding="utf-8")
    ingest(tmp_path, [path])
    assert preview_rows(tmp_path / "corpus", max_chars=3) == ["ééé", "pla"]


def test_stored_dataset_is_a_single_text_column(tmp_path):
    path, _ = wiki_slice(tmp_path, 20)
    ingest_corpus([path], tmp_path / "corpus")
    dataset = load_corpus(tmp_path / "corpus")
    assert dataset.column_names == ["text"]
    assert dataset.features["text"].dtype == "string"


def test_latin1_gutenberg_paragraphs_decode_accents(tmp_path):
    stats, docs = ingest(tmp_path, [CHESTERTON], txt_mode="paragraphs")

    assert stats.encodings["chesterton_latin1.txt"] != "utf-8"
    text = "\n".join(docs)
    assert "Coppée" in text and "Barrès" in text and "café" in text
    assert "\ufffd" not in text and "Ã©" not in text  # no replacement chars, no mojibake
    assert not any("\n" in doc for doc in docs)
    # A hard-wrapped paragraph from the book comes back as one line joined by spaces.
    assert "MacIan found two oars in the bottom of the deserted boat and began somewhat drearily to row." in docs
    assert docs[0] == "preserve it from the possibilities of rust."  # the slice starts mid-paragraph


def test_crlf_moby_dick_paragraphs(tmp_path):
    stats, docs = ingest(tmp_path, [MOBY_DICK], txt_mode="paragraphs")
    assert stats.documents > 300
    assert not any("\r" in doc or "\n" in doc for doc in docs)
    assert stats.encodings["moby_dick_crlf.txt"] == "utf-8"
    assert docs[0] == "[Moby Dick by Herman Melville 1851]"
    # Paragraph mode must give far fewer documents than there are non-empty lines.
    non_empty_lines = sum(1 for line in MOBY_DICK.read_bytes().splitlines() if line.strip())
    assert stats.documents < non_empty_lines / 2


def test_lone_cr_line_endings_and_bom(tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"\xef\xbb\xbfone\rtwo\r\rthree")
    stats, docs = ingest(tmp_path, [path])
    assert docs == ["one", "two", "three"]  # BOM stripped, CR treated as a line break
    assert stats.empty_lines == 1
    assert stats.encodings["mac.txt"] == "utf-8"


def test_cp1252_and_latin1_fallbacks(tmp_path):
    quotes = tmp_path / "quotes.txt"
    quotes.write_bytes(b"\x93Smart quotes\x94 cost \x80 5\n")  # cp1252 quotes and euro sign
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"caf\xe9 \x81\n")  # 0x81 is undefined in cp1252, so only Latin-1 fits
    stats, docs = ingest(tmp_path, [quotes, odd])
    assert stats.encodings == {"quotes.txt": "cp1252", "odd.txt": "latin-1"}
    assert docs == ["\u201cSmart quotes\u201d cost \u20ac 5", "caf\u00e9 \u0081"]


def test_unknown_txt_mode_is_rejected(tmp_path):
    path, _ = wiki_slice(tmp_path, 5)
    expect_error(tmp_path, [path], "sentences", txt_mode="sentences")


def test_min_chars_drops_short_documents(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("ok\nthis line is long enough\n\nno\n", encoding="utf-8")
    stats, docs = ingest(tmp_path, [path], min_chars=5)
    assert docs == ["this line is long enough"]
    assert stats.short_documents == 2
    assert stats.empty_lines == 1


# -------------------------------------------------------------------------- gzip


def test_gzip_gives_the_same_corpus_as_plain_text(tmp_path):
    plain_stats, plain_docs = ingest(tmp_path / "plain", [CHESTERTON], txt_mode="paragraphs")
    gz = tmp_path / "chesterton_latin1.txt.gz"
    gz.write_bytes(gzip.compress(CHESTERTON.read_bytes()))
    gz_stats, gz_docs = ingest(tmp_path / "gz", [gz], txt_mode="paragraphs")

    assert gz_docs == plain_docs
    assert gz_stats.documents == plain_stats.documents
    assert gz_stats.duplicate_documents == plain_stats.duplicate_documents
    assert gz_stats.encodings == {"chesterton_latin1.txt.gz": plain_stats.encodings["chesterton_latin1.txt"]}


def test_truncated_gzip_is_reported_and_leaves_nothing(tmp_path):
    data = gzip.compress(CHESTERTON.read_bytes())
    bad = tmp_path / "book.txt.gz"
    bad.write_bytes(data[: len(data) // 2])
    expect_error(tmp_path, [bad], "book.txt.gz", "gzip")


def test_gzipped_data_without_gz_extension_is_explained(tmp_path):
    path = tmp_path / "packed.txt"
    path.write_bytes(gzip.compress(b"hello world\n" * 100))
    expect_error(tmp_path, [path], "packed.txt", "gzip")


# ---------------------------------------------------------------------- CSV / TSV


@pytest.mark.real_data
def test_chnsenticorp_csv_review_column(tmp_path):
    with CHNSENTI.open(encoding="utf-8", newline="") as f:
        reviews = [row["review"].strip() for row in csv.DictReader(f)]
    expected = [r for r in reviews if r]
    assert len(reviews) - len(expected) == 1  # the README's one empty review

    stats, docs = ingest(tmp_path, [CHNSENTI], text_column="review")
    assert docs == expected
    assert stats.documents == 7765
    assert stats.empty_lines == 1
    assert stats.encodings == {"ChnSentiCorp_htl_all.csv": "utf-8"}


def reviews_csv(tmp_path: Path) -> Path:
    """novels_zh_train.csv with ChnSentiCorp's header (label,review): a real Chinese CSV with no "text" column."""
    with NOVELS_ZH["train"].open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    path = tmp_path / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "review"])
        writer.writerows([row["label"], row["text"]] for row in rows)
    return path


def test_csv_without_text_column_lists_the_columns(tmp_path):
    expect_error(tmp_path, [reviews_csv(tmp_path)], "reviews.csv", "'label'", "'review'")


def test_csv_with_unknown_column_names_it(tmp_path):
    expect_error(tmp_path, [reviews_csv(tmp_path)], "reviews.csv", "nope", "'review'", text_column="nope")


def test_csv_text_column_of_real_chinese_rows(tmp_path):
    path = reviews_csv(tmp_path)
    with path.open(encoding="utf-8", newline="") as f:
        expected = [row["review"] for row in csv.DictReader(f)]
    stats, docs = ingest(tmp_path, [path], text_column="review")
    assert docs == expected and stats.documents == 150
    assert stats.encodings == {"reviews.csv": "utf-8"}


@pytest.mark.real_data
def test_toutiao_csv_with_newlines_inside_quotes(tmp_path):
    # dedupe=False: one record per row, the 152 repeated titles included (by default they are removed).
    stats, docs = ingest(tmp_path, [TOUTIAO], text_column="text", dedupe=False)
    assert stats.documents == 5000
    assert docs[0] == "F1赛车手库卡比：除非我撞死了，否则我会一直开下去"

    # The keywords column holds the embedded newlines; it must still come out one record per row.
    kw_stats, kw_docs = ingest(tmp_path / "kw", [TOUTIAO], text_column="keywords", dedupe=False)
    assert kw_stats.documents + kw_stats.empty_lines == 5000
    assert kw_docs[0] == "Renault,雷诺车队,领航员,拉力赛,Sport,F1,车手,库比卡"


def test_tsv_with_quoted_fields_and_crlf(tmp_path):
    path = tmp_path / "small.tsv"
    path.write_bytes(
        b"id\ttext\r\n"
        b"1\tplain row\r\n"
        b'2\t"quoted\twith tab\r\nand a line break"\r\n'
        b"3\t\r\n"
        b"4\tplain row\r\n"
    )
    stats, docs = ingest(tmp_path, [path])
    assert docs == ["plain row", "quoted\twith tab\nand a line break"]  # the second "plain row" is a duplicate
    assert stats.empty_lines == 1
    assert stats.duplicate_documents == stats.removed["exact_duplicates"] == 1
    _, kept = ingest(tmp_path / "kept", [path], dedupe=False)
    assert kept == ["plain row", "quoted\twith tab\nand a line break", "plain row"]


def test_single_column_csv_needs_no_text_column(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("sentence\nfirst\nsecond\n", encoding="utf-8")
    _, docs = ingest(tmp_path, [path])
    assert docs == ["first", "second"]


def test_csv_row_with_too_many_fields_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\ngood,1\nbad,1,extra\n", encoding="utf-8")
    expect_error(tmp_path, [path], "ragged.csv", "line 3")


# --------------------------------------------------------------------- JSON Lines


def test_jsonl_with_custom_column_and_nulls(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"body": "first doc", "id": 1}, {"body": None, "id": 2}, {"body": "  third  ", "id": 3}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    stats, docs = ingest(tmp_path, [path], text_column="body")
    assert docs == ["first doc", "third"]
    assert stats.empty_lines == 2  # the null and the trailing blank line


def test_jsonl_missing_key_names_line_and_keys(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [{"text": "one"}, {"text": "two"}, {"title": "three", "body": "..."}]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    expect_error(tmp_path, [path], "docs.jsonl", "line 3", "'text'", "'title'", "'body'")


def test_jsonl_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "no closing brace"\n', encoding="utf-8")
    expect_error(tmp_path, [path], "broken.jsonl", "line 2")


def test_json_array_gets_a_hint(tmp_path):
    path = tmp_path / "array.json"
    path.write_text('[\n{"text": "a"}\n]\n', encoding="utf-8")
    expect_error(tmp_path, [path], "array.json", "line 1", "JSON Lines")


# ------------------------------------------------------------------------ Parquet


def test_parquet_in_row_group_batches_and_gzipped(tmp_path):
    texts = [f"document number {i}" for i in range(2500)] + [None, ""]
    table = pa.table({"id": list(range(len(texts))), "content": texts})
    path = tmp_path / "docs.parquet"
    pq.write_table(table, path, row_group_size=1000)

    stats, docs = ingest(tmp_path / "plain", [path], text_column="content")
    assert docs == texts[:2500]
    assert stats.empty_lines == 2
    assert stats.encodings == {"docs.parquet": "utf-8"}

    gz = tmp_path / "docs.parquet.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    _, gz_docs = ingest(tmp_path / "gz", [gz], text_column="content")
    assert gz_docs == docs


def test_parquet_non_string_column_is_rejected(tmp_path):
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), path)
    expect_error(tmp_path, [path], "numbers.parquet", "'text'", "int64")


# -------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.txt", b"", "file is empty"),
        ("blank.txt", b"   \n\t\n\r\n  ", "contains only whitespace"),
        ("bytes.txt", bytes(range(256)) * 100, "looks like binary data"),
        ("image.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"IHDR" * 10, "looks like binary data"),
        ("nul.txt", b"mostly text\n" * 500 + b"\x00", "looks like binary data"),
        ("report.docx", b"PK\x03\x04 not really a docx", "unsupported file type '.docx'"),
        ("utf16.txt", "hello world\n".encode("utf-16"), "UTF-16"),
        ("header_only.csv", b"text,label\n", "no documents"),
    ],
)
def test_bad_file_is_rejected_by_name(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    expect_error(tmp_path, [path], name, fragment)


def test_missing_file_and_no_files(tmp_path):
    expect_error(tmp_path, [tmp_path / "nowhere.txt"], "nowhere.txt", "not found")
    expect_error(tmp_path, [], "no files")


def test_one_bad_file_fails_the_whole_corpus(tmp_path):
    good, _ = wiki_slice(tmp_path, 10)
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    expect_error(tmp_path, [good, bad], "empty.txt")


# ---------------------------------------------------------------- stats, layout


def test_duplicates_and_histogram(tmp_path):
    path = tmp_path / "dups.txt"
    path.write_text("a b c\nsolo\na b c\n\nanother line here now\na b c\nsolo\n", encoding="utf-8")
    stats, docs = ingest(tmp_path, [path])

    assert docs == ["a b c", "solo", "another line here now"]  # repeats removed (the default), first ones kept
    assert stats.documents == len(docs) == 3
    assert stats.duplicate_documents == 3  # two repeats of "a b c", one of "solo"
    assert stats.removed["exact_duplicates"] == 3
    assert stats.empty_lines == 1
    hist = stats.length_histogram
    assert sum(hist["counts"]) == stats.documents
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    assert hist["edges"] == sorted(hist["edges"])
    # Every document falls in the bin its word count says.
    for lo, hi, count in zip(hist["edges"], hist["edges"][1:], hist["counts"]):
        assert count == sum(1 for d in docs if lo <= len(d.split()) < hi)
    assert stats.to_dict()["length_histogram"] == hist


def test_histogram_sums_on_real_text(tmp_path):
    stats, _ = ingest(tmp_path, [CHESTERTON], txt_mode="paragraphs")
    assert sum(stats.length_histogram["counts"]) == stats.documents
    assert 5 <= len(stats.length_histogram["counts"]) <= 30


def test_multiple_files_add_up(tmp_path):
    wiki, _ = wiki_slice(tmp_path, 200)
    wiki_stats, wiki_docs = ingest(tmp_path / "a", [wiki])
    book_stats, book_docs = ingest(tmp_path / "b", [CHESTERTON])
    both_stats, both_docs = ingest(tmp_path / "c", [wiki, CHESTERTON])

    assert both_stats.documents == wiki_stats.documents + book_stats.documents
    assert both_docs == wiki_docs + book_docs
    assert both_stats.words == wiki_stats.words + book_stats.words
    assert set(both_stats.encodings) == {"wiki.txt", "chesterton_latin1.txt"}
    assert both_stats.encodings["wiki.txt"] == "utf-8"
    assert both_stats.encodings["chesterton_latin1.txt"] != "utf-8"
    assert both_stats.files == ["wiki.txt", "chesterton_latin1.txt"]


def test_reingest_replaces_corpus_and_failure_keeps_the_old_one(tmp_path):
    dest = tmp_path / "corpus"
    first = tmp_path / "first.txt"
    first.write_text("old corpus\n", encoding="utf-8")
    second = tmp_path / "second.txt"
    second.write_text("new corpus\n", encoding="utf-8")

    ingest_corpus([first], dest)
    ingest_corpus([second], dest)
    assert preview_rows(dest) == ["new corpus"]

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(CorpusError):
        ingest_corpus([empty], dest)
    assert preview_rows(dest) == ["new corpus"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "empty.txt", "first.txt", "second.txt"]



def test_duplicates_counted_exactly_across_spilled_hash_buffers(tmp_path, monkeypatch):
    """The duplicate check keeps its hashes on disk, spilled buffer by buffer: repeats that fall in
    different buffers count the same as an exact in-memory count."""
    import pretrain_studio.data.cleaning as cleaning_module

    monkeypatch.setattr(cleaning_module, "DIGEST_BUFFER", 64)  # a spill every 64 documents
    lines = [line.strip() for line in MOBY_DICK.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = lines[:700] + lines[100:400] + lines[:64]
    path = tmp_path / "repeats.txt"
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    stats = ingest_corpus([path], tmp_path / "corpus")
    assert stats.documents == len(set(docs))  # repeats removed (the default), the first occurrence kept
    assert stats.duplicate_documents == stats.removed["exact_duplicates"] == len(docs) - len(set(docs)) >= 364
    assert load_corpus(tmp_path / "corpus")["text"] == list(dict.fromkeys(docs))
    stats = ingest_corpus([path], tmp_path / "kept", dedupe=False)
    assert stats.documents == len(docs)
    assert stats.duplicate_documents == len(docs) - len(set(docs))
    assert load_corpus(tmp_path / "kept")["text"] == docs

def test_unrelated_folder_is_never_overwritten(tmp_path):
    dest = tmp_path / "corpus"
    dest.mkdir()
    (dest / "notes.md").write_text("keep me", encoding="utf-8")
    path, _ = wiki_slice(tmp_path, 5)
    with pytest.raises(CorpusError, match="refusing"):
        ingest_corpus([path], dest)
    assert (dest / "notes.md").read_text(encoding="utf-8") == "keep me"


def test_load_corpus_without_corpus(tmp_path):
    with pytest.raises(CorpusError, match="no corpus"):
        load_corpus(tmp_path / "missing")

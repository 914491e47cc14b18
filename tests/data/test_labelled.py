"""Tests for pretrain_studio.data.labelled, on real files: the labelled sets in tests/data, and, marked
`real_data`, the shared sets (SST-2, TREC, AG News, ChnSentiCorp, Toutiao) whose own formats and traps are the point.

Each test checks something a user would notice: wrong label names or counts, a split that is
not stratified or not repeatable, an error that does not say where the bad row is, or a failed
ingest that leaves a half-written dataset behind.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AUTHORS, DATA, NOVELS_ZH, REPO

from pretrain_studio.data.labelled import (
    FORMATS,
    MAX_CLASSES,
    DatasetError,
    LabelledStats,
    ingest_labelled,
    inspect_columns,
    load_labelled,
    read_prediction_rows,
)

SST_TRAIN = DATA / "sst2" / "stsa.binary.train"
SST_DEV = DATA / "sst2" / "stsa.binary.dev"
TREC_TRAIN = DATA / "trec" / "TREC.train"
AG_TRAIN = DATA / "ag_news" / "train_5k.csv"
CHNSENTI = DATA / "chnsenticorp" / "ChnSentiCorp_htl_all.csv"
TOUTIAO = DATA / "toutiao_news"


def ingest(tmp_path: Path, train, **kwargs) -> tuple[LabelledStats, datasets.DatasetDict]:
    """Ingest into a fresh folder and return the stats with the stored dataset."""
    dest = tmp_path / "labelled"
    stats = ingest_labelled(train, dest, **kwargs)
    return stats, load_labelled(dest)


def expect_error(tmp_path: Path, train, *fragments: str, **kwargs) -> str:
    """Ingest must fail with a message holding every fragment, and leave nothing behind."""
    dest = tmp_path / "out" / "labelled"
    with pytest.raises(DatasetError) as info:
        ingest_labelled(train, dest, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []  # no temp build folder either
    return message


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def labels_of(dataset: datasets.Dataset) -> list[str]:
    names = dataset.features["label"].names
    return [names[i] for i in dataset["label"]]


# ------------------------------------------------------------- prefixed text (SST-2, fastText, TREC)


@pytest.mark.real_data
def test_sst2_prefixed_file_without_extension_with_dev_file(tmp_path):
    stats, ds = ingest(tmp_path, SST_TRAIN, validation_file=SST_DEV)

    assert stats.labels == ["0", "1"]
    assert stats.counts == {"train": {"0": 3310, "1": 3610}, "validation": {"0": 428, "1": 444}}
    assert stats.splits == {"train": 6920, "validation": 872}
    assert stats.split_made is False
    assert stats.files == {"train": "stsa.binary.train", "validation": "stsa.binary.dev"}
    assert stats.encodings == {"stsa.binary.train": "utf-8", "stsa.binary.dev": "utf-8"}
    assert stats.columns == {"text": "text", "text_pair": None, "label": "label"}
    assert stats.text_pair is False
    assert stats.imbalance == pytest.approx(3610 / 3310)

    # The label is everything before the first space; the text is the rest of the line, as is.
    first_lines = SST_TRAIN.read_text(encoding="utf-8").splitlines()[:10]
    assert stats.examples == [{"text": line.split(" ", 1)[1], "label": line.split(" ", 1)[0]} for line in first_lines]
    assert ds["train"]["text"][:10] == [e["text"] for e in stats.examples]
    assert list(ds) == ["train", "validation"]

    train_texts = {line.split(" ", 1)[1].strip() for line in SST_TRAIN.read_text(encoding="utf-8").splitlines()}
    dev_texts = {line.split(" ", 1)[1].strip() for line in SST_DEV.read_text(encoding="utf-8").splitlines()}
    assert stats.cross_split_duplicates == {"train/validation": len(train_texts & dev_texts)}
    assert stats.to_dict()["counts"] == stats.counts


def test_fasttext_labels_keep_their_names_and_tiny_sets_still_split(tmp_path):
    lines = [f"__label__{'pos' if i % 3 else 'neg'} movie number {i} was {'great' if i % 3 else 'dull'}"
             for i in range(12)]
    path = write(tmp_path / "reviews.txt", "\r\n".join(lines) + "\r\n\r\n")  # CRLF and a trailing blank line
    stats, ds = ingest(tmp_path, path, seed=3)

    assert stats.labels == ["neg", "pos"]
    # 12 rows: test and validation get one row each, too few to stratify two classes: a plain split.
    assert stats.split_made is True
    assert stats.splits == {"train": 10, "validation": 1, "test": 1}
    assert sum(sum(c.values()) for c in stats.counts.values()) == 12
    stored = sorted(t for split in ds.values() for t in split["text"])
    assert stored == sorted(line.split(" ", 1)[1] for line in lines)
    assert not any("\r" in t or "__label__" in t for t in stored)


def test_fasttext_multi_label_and_missing_prefix_are_refused(tmp_path):
    multi = write(tmp_path / "multi.txt", "__label__a one\n__label__b two\n__label__a __label__b both\n")
    expect_error(tmp_path, multi, "multi.txt", "line 3", "multi-label")
    mixed = write(tmp_path / "mixed.txt", "__label__a one\nb two\n__label__b three\n")
    expect_error(tmp_path, mixed, "mixed.txt", "line 2", "__label__")
    no_text = write(tmp_path / "notext.txt", "pos fine\nneg\npos good\n")
    expect_error(tmp_path, no_text, "notext.txt", "line 2", "no text")


@pytest.mark.real_data
def test_trec_latin1_fine_labels_and_the_class_limit(tmp_path):
    expect_error(tmp_path, TREC_TRAIN, "TREC.train", "50 classes", "limit of 10", max_classes=10)

    stats, ds = ingest(tmp_path, TREC_TRAIN)
    assert stats.encodings["TREC.train"] in ("cp1252", "latin-1")  # the file has a 0xF0 byte
    assert len(stats.labels) == 50
    assert "DESC:manner" in stats.labels and "LOC:city" in stats.labels
    assert sum(stats.splits.values()) == 5452
    coarse = Counter()
    for label, count in (pair for split in stats.counts.values() for pair in split.items()):
        coarse[label.split(":")[0]] += count
    assert coarse == {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223, "LOC": 835, "NUM": 896}
    all_texts = [t for split in ds.values() for t in split["text"]]
    assert any("sister\u00f0city" in t for t in all_texts)  # decoded, not replaced


# ------------------------------------------------------------------------------- CSV


@pytest.mark.real_data
def test_ag_news_headerless_csv_stratified_split_is_repeatable(tmp_path):
    stats, ds = ingest(tmp_path / "a", AG_TRAIN, text_column="col1", label_column="col2")

    assert stats.columns == {"text": "col1", "text_pair": None, "label": "col2"}
    assert stats.labels == ["0", "1", "2", "3"]
    assert stats.split_made is True
    assert stats.splits == {"train": 4000, "validation": 500, "test": 500}
    assert stats.files == {"train": "train_5k.csv", "validation": "train_5k.csv", "test": "train_5k.csv"}
    totals = {"0": 1259, "1": 1257, "2": 1281, "3": 1203}  # from the data README
    for label, total in totals.items():
        assert sum(stats.counts[s][label] for s in stats.splits) == total
        for split in ("validation", "test"):  # stratified: each class keeps its share
            assert abs(stats.counts[split][label] - total * 0.1) <= 1.5
    texts = {s: set(ds[s]["text"]) for s in ds}
    assert stats.cross_split_duplicates == {
        "train/validation": len(texts["train"] & texts["validation"]),
        "train/test": len(texts["train"] & texts["test"]),
        "validation/test": len(texts["validation"] & texts["test"]),
    }

    again, ds_again = ingest(tmp_path / "b", AG_TRAIN, text_column="col1", label_column="col2")
    assert again.counts == stats.counts
    assert ds_again["validation"]["text"] == ds["validation"]["text"]
    other, ds_other = ingest(tmp_path / "c", AG_TRAIN, text_column="col1", label_column="col2", seed=7)
    assert set(ds_other["validation"]["text"]) != texts["validation"]
    assert other.splits == stats.splits


@pytest.mark.real_data
def test_ag_news_columns_are_guessed_when_not_given(tmp_path):
    # Headerless, two columns, only one of which holds short space-free values: that is the label.
    stats, _ = ingest(tmp_path, AG_TRAIN, test_fraction=0)
    assert stats.columns == {"text": "col1", "text_pair": None, "label": "col2"}
    assert set(stats.splits) == {"train", "validation"}
    # Three columns (class, title, description) cannot be guessed: the user is asked to choose.
    expect_error(tmp_path, DATA / "ag_news" / "test.csv", "test.csv", "'col1', 'col2', 'col3'", "choose")


@pytest.mark.real_data
def test_chnsenticorp_empty_review_is_reported_with_its_line(tmp_path):
    with CHNSENTI.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        empty_lines = [reader.line_num for row in reader if not row[1].strip()]
    assert len(empty_lines) == 1
    expect_error(tmp_path, CHNSENTI, "ChnSentiCorp_htl_all.csv", "'review'", f"line {empty_lines[0]}",
                 text_column="review")


@pytest.mark.real_data
def test_toutiao_three_files_with_embedded_newlines_and_duplicates(tmp_path):
    stats, ds = ingest(tmp_path, TOUTIAO / "train.csv", validation_file=TOUTIAO / "dev.csv",
                       test_file=TOUTIAO / "test.csv")

    assert stats.splits == {"train": 5000, "validation": 999, "test": 999}
    assert len(stats.labels) == 15 and "stock" in stats.labels
    assert {s: c["stock"] for s, c in stats.counts.items()} == {"train": 1, "validation": 2, "test": 1}
    assert stats.split_made is False

    def titles(name):
        with (TOUTIAO / name).open(encoding="utf-8", newline="") as f:
            return {row["text"].strip() for row in csv.DictReader(f)}

    train, dev, test = titles("train.csv"), titles("dev.csv"), titles("test.csv")
    assert stats.cross_split_duplicates == {
        "train/validation": len(train & dev), "train/test": len(train & test), "validation/test": len(dev & test)
    }
    assert stats.cross_split_duplicates["train/validation"] == 53  # as the data README says
    assert 0 < len(stats.duplicate_examples) <= 10
    for example in stats.duplicate_examples:
        assert len(example["splits"]) >= 2
        assert all(example["text"] in set(ds[s]["text"]) for s in example["splits"])


# ----------------------------------------------------------- JSON Lines, Parquet, pairs, gzip


@pytest.mark.parametrize(("files", "labels"), [(AUTHORS, ["Austen", "Shakespeare", "Whitman"]),
                                               (NOVELS_ZH, sorted(["三国演义", "红楼梦", "西游记"]))],
                         ids=["authors", "novels_zh"])
def test_real_csv_train_dev_test_files_keep_every_row(tmp_path, files, labels):
    stats, ds = ingest(tmp_path, files["train"], validation_file=files["dev"], test_file=files["test"])
    per_label = {"train": 80, "validation": 20, "test": 20} if files is AUTHORS else {"train": 50, "validation": 15,
                                                                                        "test": 15}
    assert stats.labels == labels and stats.split_made is False
    assert stats.counts == {split: dict.fromkeys(labels, n) for split, n in per_label.items()}
    assert stats.encodings == {f.name: "utf-8" for f in files.values()}
    assert stats.columns == {"text": "text", "text_pair": None, "label": "label"}
    for split, name in [("train", "train"), ("validation", "dev"), ("test", "test")]:
        with files[name].open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert ds[split]["text"] == [r["text"] for r in rows]
        assert labels_of(ds[split]) == [r["label"] for r in rows]


def test_jsonl_integer_labels_sort_naturally(tmp_path):
    records = [{"text": f"example {i}", "label": i % 11, "extra": [1]} for i in range(44)]
    path = write(tmp_path / "data.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    stats, ds = ingest(tmp_path, path, validation_fraction=0.25, test_fraction=0)

    assert stats.labels == [str(i) for i in range(11)]  # "2" before "10"
    assert ds["train"].features["label"].names == stats.labels
    assert stats.splits == {"train": 33, "validation": 11}
    assert all(c == 1 for c in stats.counts["validation"].values())  # stratified


def test_parquet_sentence_pairs(tmp_path):
    rows = {
        "premise": [f"premise {i}" for i in range(40)],
        "hypothesis": [f"hypothesis {i}" for i in range(40)],
        "gold": ["entailment", "neutral", "contradiction", "neutral"] * 10,
    }
    path = tmp_path / "nli.parquet"
    pq.write_table(pa.table(rows), path)
    val = tmp_path / "nli_dev.parquet"
    pq.write_table(pa.table({k: v[:8] for k, v in rows.items()}), val)
    stats, ds = ingest(tmp_path, path, text_column="premise", text_pair_column="hypothesis", label_column="gold",
                       validation_file=val)

    assert stats.text_pair is True
    assert stats.columns == {"text": "premise", "text_pair": "hypothesis", "label": "gold"}
    assert stats.labels == ["contradiction", "entailment", "neutral"]
    assert stats.examples[0] == {"text": "premise 0", "text_pair": "hypothesis 0", "label": "entailment"}
    assert ds.column_names["train"] == ["text", "text_pair", "label"]
    assert ds["validation"]["text_pair"] == rows["hypothesis"][:8]
    # Duplicates of sentence pairs compare the whole pair.
    assert stats.cross_split_duplicates == {"train/validation": 8}
    assert stats.duplicate_examples[0] == {"text": "premise 0", "text_pair": "hypothesis 0",
                                           "splits": ["train", "validation"]}


def test_gzipped_tsv_with_header_and_cp1252(tmp_path):
    body = "sentence\tclass\n" + "".join(f"caf\u00e9 \u201cnum\u00e9ro\u201d {i}\t{'ab'[i % 2]}\n" for i in range(20))
    path = tmp_path / "data.tsv.gz"
    path.write_bytes(gzip.compress(body.encode("cp1252")))
    stats, ds = ingest(tmp_path, path)
    assert stats.encodings == {"data.tsv.gz": "cp1252"}
    assert stats.columns["text"] == "sentence" and stats.columns["label"] == "class"
    assert "caf\u00e9 \u201cnum\u00e9ro\u201d 0" in [t for s in ds.values() for t in s["text"]]


# ------------------------------------------------------------------------- bad inputs


def test_missing_label_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "data.csv", "text,sentiment\nnice,1\nbad,0\n")
    expect_error(tmp_path, path, "data.csv", "'label'", "'text', 'sentiment'", label_column="label")
    expect_error(tmp_path, path, "data.csv", "no text pair column 'other'", label_column="sentiment",
                 text_pair_column="other")


def test_empty_labels_name_every_row(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,x\nb,\nc,y\nd,  \ne,x\n")
    expect_error(tmp_path, path, "data.csv", "'label'", "lines 3, 5")
    many = write(tmp_path / "many.csv", "text,label\n" + "t,\n" * 8 + "u,a\nv,b\n")
    expect_error(tmp_path, many, "many.csv", "lines 2, 3, 4, 5, 6 and 3 more")
    jsonl = write(tmp_path / "data.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": null}\n')
    expect_error(tmp_path, jsonl, "data.jsonl", "line 2")
    empty_text = write(tmp_path / "texts.csv", "text,label\na,x\n ,y\nc,y\n")
    expect_error(tmp_path, empty_text, "texts.csv", "'text'", "line 3", "empty")


def test_single_class(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,x\nb,x\nc,x\n")
    expect_error(tmp_path, path, "data.csv", "single class", "'x'")


def test_ragged_csv_row(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,x\nb,y,extra\nc,y\n")
    expect_error(tmp_path, path, "data.csv", "line 3", "more fields")


def test_malformed_json_line(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": \n{"text": "c"}\n')
    expect_error(tmp_path, path, "data.jsonl", "line 2", "malformed JSON")
    array = write(tmp_path / "array.json", '[{"text": "a", "label": "x"}]\n')
    expect_error(tmp_path, array, "array.json", "JSON array")


def test_binary_and_empty_files(tmp_path):
    binary = tmp_path / "data.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    expect_error(tmp_path, binary, "data.csv", "binary")
    empty = write(tmp_path / "empty.csv", "")
    expect_error(tmp_path, empty, "empty.csv", "empty")
    header_only = write(tmp_path / "header.csv", "text,label\n")
    expect_error(tmp_path, header_only, "header.csv", "no data rows")
    unknown = write(tmp_path / "notes.txt", "justoneword\n")
    expect_error(tmp_path, unknown, "notes.txt", "could not recognise", "prefixed")


def test_label_unknown_to_train_in_validation_file(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,x\n")
    dev = write(tmp_path / "dev.csv", "text,label\nd,x\ne,z\nf,y\ng,z\n")
    expect_error(tmp_path, train, "dev.csv", "'z'", "lines 3, 5", "train.csv", validation_file=dev)
    no_col = write(tmp_path / "dev2.csv", "sentence,label\nd,x\n")
    expect_error(tmp_path, train, "dev2.csv", "no text column 'text'", validation_file=no_col)


def test_split_keeps_single_row_classes_in_train_and_stratifies_the_rest(tmp_path):
    rows = [f"a{i},common" for i in range(60)] + [f"b{i},other" for i in range(40)] + ["c0,lonely"]
    path = write(tmp_path / "data.csv", "text,label\n" + "\n".join(rows) + "\n")
    stats, _ = ingest(tmp_path, path)
    assert stats.counts["train"]["lonely"] == 1
    assert stats.counts["validation"] == {"common": 6, "lonely": 0, "other": 4}
    assert stats.counts["test"] == {"common": 6, "lonely": 0, "other": 4}


def test_too_few_rows_to_split(tmp_path):
    tiny = write(tmp_path / "tiny.csv", "great film,pos\nbad film,neg\nok film,pos\n")
    expect_error(tmp_path, tiny, "tiny.csv", "too few rows", "validation file")
    stats, _ = ingest(tmp_path, tiny, validation_file=tiny)  # headerless, label column guessed
    assert stats.columns == {"text": "col1", "text_pair": None, "label": "col2"}
    assert stats.labels == ["neg", "pos"]


def test_bad_options_and_existing_destination(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\n")
    expect_error(tmp_path, train, "file_format", file_format="xlsx")
    expect_error(tmp_path, train, "validation_fraction", validation_fraction=0)
    expect_error(tmp_path, train, "below 1", validation_fraction=0.6, test_fraction=0.5)
    expect_error(tmp_path, tmp_path / "missing.csv", "missing.csv", "not found")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="refusing"):
        ingest_labelled(train, occupied, validation_file=train)
    assert (occupied / "keep.txt").read_text() == "mine"


def test_reingest_replaces_an_earlier_dataset(tmp_path):
    dest = tmp_path / "labelled"
    first = write(tmp_path / "first.csv", "text,label\na,x\nb,y\n")
    second = write(tmp_path / "second.csv", "text,label\nc,p\nd,q\ne,p\n")
    ingest_labelled(first, dest, validation_file=first)
    ingest_labelled(second, dest, validation_file=second)
    assert load_labelled(dest)["train"].features["label"].names == ["p", "q"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.csv", "labelled", "second.csv"]


# ------------------------------------------------------------------ loading and preview


@pytest.mark.parametrize("files", [AUTHORS, NOVELS_ZH], ids=["authors", "novels_zh"])
def test_load_labelled_class_labels_agree_across_splits(tmp_path, files):
    stats, ds = ingest(tmp_path, files["dev"], validation_file=files["test"])
    for split in ds.values():
        assert isinstance(split.features["label"], datasets.ClassLabel)
        assert split.features["label"].names == stats.labels
    with files["test"].open(encoding="utf-8", newline="") as f:
        expected = [row["label"] for row in csv.DictReader(f)]
    assert labels_of(ds["validation"]) == expected
    assert Counter(labels_of(ds["train"])) == {k: v for k, v in stats.counts["train"].items() if v}
    with pytest.raises(DatasetError, match="no labelled dataset"):
        load_labelled(tmp_path / "nowhere")


@pytest.mark.real_data
def test_inspect_columns_headerless_headered_and_prefixed():
    headerless = inspect_columns(AG_TRAIN)
    assert headerless["format"] == "csv"
    assert headerless["has_header"] is False
    assert headerless["columns"] == ["col1", "col2"]
    assert len(headerless["rows"]) == 5 and headerless["rows"][0]["col2"] == "3"
    assert headerless["guess"] == {"text": "col1", "label": "col2", "text_pair": None}

    headered = inspect_columns(TOUTIAO / "train.csv")
    assert headered["has_header"] is True
    assert headered["columns"] == ["text", "keywords", "label"]
    assert headered["rows"][0]["label"] == "news_car"
    assert headered["guess"] == {"text": "text", "label": "label", "text_pair": None}

    forced = inspect_columns(CHNSENTI, has_header=False)
    assert forced["columns"] == ["col1", "col2"] and forced["rows"][0] == {"col1": "label", "col2": "review"}

    prefixed = inspect_columns(TREC_TRAIN)
    assert prefixed["format"] == "prefixed" and prefixed["columns"] == ["label", "text"]
    assert prefixed["rows"][0]["label"] == "DESC:manner"


def test_inspect_columns_errors(tmp_path):
    with pytest.raises(DatasetError, match="no file given"):
        inspect_columns("")
    with pytest.raises(DatasetError, match="binary"):
        inspect_columns(write(tmp_path / "x.tsv", "a\x00b\x00\x01\x02" * 50))


@pytest.mark.real_data
def test_read_prediction_rows_of_sst2_test_file_takes_its_prefixes_as_gold_labels():
    # A prefixed file: its first words are clearly labels, so they become the gold labels.
    texts, pairs, gold = read_prediction_rows(DATA / "sst2" / "stsa.binary.test")
    assert len(texts) == 1821 and pairs is None and Counter(gold) == {"0": 912, "1": 909}


def test_read_prediction_rows_with_and_without_labels(tmp_path):
    # A real labelled CSV: its label column becomes the gold labels.
    with AUTHORS["test"].open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert read_prediction_rows(AUTHORS["test"]) == ([r["text"] for r in rows], None, [r["label"] for r in rows])
    # Ordinary sentences in a .txt file: one text per line, no labels.
    plain = write(tmp_path / "texts.txt", "The film was fine.\nA dull mess\r\nWow\n\nThe end came fast.\n")
    assert read_prediction_rows(plain) == (["The film was fine.", "A dull mess", "Wow", "The end came fast."],
                                           None, None)
    # CSV: label column used when present, optional otherwise; pairs from "text_pair".
    labelled = write(tmp_path / "pairs.csv", "text,text_pair,label\na,b,x\nc,d,y\n")
    assert read_prediction_rows(labelled) == (["a", "c"], ["b", "d"], ["x", "y"])
    headerless = write(tmp_path / "one.csv", "first text\nsecond text\n")
    assert read_prediction_rows(headerless) == (["first text", "second text"], None, None)
    with pytest.raises(DatasetError, match="more than 1 rows"):
        read_prediction_rows(headerless, max_rows=1)
    gaps = write(tmp_path / "gaps.csv", "text,label\na,x\nb,\n")
    with pytest.raises(DatasetError, match="gaps.csv: column 'label': .* line 3"):
        read_prediction_rows(gaps)
    with pytest.raises(DatasetError, match="no label column 'gold'"):
        read_prediction_rows(gaps, label_column="gold")


def test_constants_and_no_gradio():
    assert MAX_CLASSES == 100
    assert FORMATS == ("auto", "csv", "tsv", "jsonl", "parquet", "prefixed")
    code = "import sys, pretrain_studio.data.labelled\nassert 'gradio' not in sys.modules\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr

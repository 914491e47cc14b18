"""Tests for token-labelled (NER) data: pretrain_studio.data.token_readers, tag_schemes and token_labelled.

On real sentences: the Austen NER files and the Hongloumeng character file in tests/data, and, marked
`real_data`, CoNLL-2003 and Resume NER from the shared folder, with the traps their README names (trailing
spaces, -DOCSTART- lines, BMES tags, tag sets that differ by split, two sentences cut inside a name). Every
format and scheme a user brings must come out as the same IOB2 sentences; every bad input must name the file and
the line, and leave nothing behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DATA, REPO

from pretrain_studio.data.labelled_readers import DatasetError
from pretrain_studio.data.tag_schemes import detect_scheme, entity_spans, split_tag, to_iob2
from pretrain_studio.data.token_labelled import ingest_token_labelled, load_token_labelled, tag_names
from pretrain_studio.data.token_readers import looks_like_token_file, read_token_file

TESTS_DATA = REPO / "tests" / "data"
AUSTEN = {split: TESTS_DATA / f"ner_austen_{split}.conll" for split in ("train", "dev", "test")}
HONGLOUMENG = TESTS_DATA / "ner_hongloumeng.bmes"
CONLL = {split: DATA / "conll2003" / f"{split}.txt" for split in ("train", "valid", "test")}
RESUME = {split: DATA / "resume_ner" / f"{split}.char.bmes" for split in ("train", "dev", "test")}


def ingest(tmp_path: Path, train, **kwargs):
    dest = tmp_path / "tokens"
    stats = ingest_token_labelled(train, dest, **kwargs)
    data = load_token_labelled(dest)
    names = tag_names(data)
    return stats, {split: [(list(row["tokens"]), [names[t] for t in row["tags"]]) for row in data[split]]
                   for split in data}


def austen_sentences(limit: int = 60) -> list[tuple[list[str], list[str]]]:
    """The first sentences of the Austen train file, as (tokens, IOB2 tags)."""
    out = [(s.tokens, s.tags) for s in read_token_file(AUSTEN["train"]).sentences]
    return out[:limit]


def expect_error(tmp_path: Path, train, *fragments: str, **kwargs) -> str:
    dest = tmp_path / "out" / "tokens"
    with pytest.raises(DatasetError) as info:
        ingest_token_labelled(train, dest, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"
    assert not dest.exists() and (not dest.parent.exists() or not list(dest.parent.iterdir()))
    return message


def write_columns(path: Path, sentences, tag_of=lambda tags: tags, sep=" ", extra_column: bool = False) -> Path:
    lines = []
    for tokens, tags in sentences:
        for token, tag in zip(tokens, tag_of(tags)):
            lines.append(sep.join([token, "NN", tag] if extra_column else [token, tag]))
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- converting to the schemes people's files use -----------------------------------------------------------

def to_bioes(tags: list[str]) -> list[str]:
    out = list(tags)
    for start, end, kind in entity_spans(tags):
        if end - start == 1:
            out[start] = f"S-{kind}"
        else:
            out[end - 1] = f"E-{kind}"
    return out


def to_iob1(tags: list[str]) -> list[str]:
    """The original CoNLL-2003 scheme: I- everywhere, B- only where an entity follows one of the same type."""
    out, previous_end = list(tags), {}
    for start, end, kind in entity_spans(tags):
        after_same = previous_end.get(kind) == start
        out[start:end] = [f"B-{kind}" if after_same else f"I-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        previous_end = {kind: end}
    return out


def to_io(tags: list[str]) -> list[str]:
    return ["O" if t == "O" else t[2:] for t in tags]


# --- formats and schemes ---------------------------------------------------------------------------------------

def test_the_austen_conll_files_read_as_iob2_with_their_entities(tmp_path):
    stats, data = ingest(tmp_path, AUSTEN["train"], validation_file=AUSTEN["dev"], test_file=AUSTEN["test"])
    assert stats.task == "token_classification" and stats.tag_scheme == "IOB2"
    assert stats.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert stats.splits == {"train": 420, "validation": 120, "test": 120}
    # Counted from the file by hand-checkable rules: a B- tag starts each entity.
    text = AUSTEN["train"].read_text(encoding="utf-8")
    assert stats.counts["train"] == {"LOC": text.count(" B-LOC\n"), "PER": text.count(" B-PER\n")}
    assert stats.documents["train"] == text.count("-DOCSTART-") and not any("-DOCSTART-" in t for t, _ in data["train"])
    # Persuasion's people are not Sense and Sensibility's: most test entities were never seen in training.
    assert stats.unseen_test_entities > 0.8
    assert data["train"][0] == (["The", "family", "of", "Dashwood", "had", "long", "been", "settled", "in",
                                 "Sussex", "."], ["O", "O", "O", "B-PER", "O", "O", "O", "O", "O", "B-LOC", "O"])
    assert sum(stats.length_histogram.values()) == 420 and stats.longest_sentence <= 60


@pytest.mark.parametrize("scheme, convert", [("IOB1", to_iob1), ("BIOES", to_bioes), ("IO", to_io)])
def test_every_scheme_comes_out_as_the_same_iob2_sentences(tmp_path, scheme, convert):
    # Two people side by side: the one place IOB1 writes B- (and where IO cannot tell them apart).
    sentences = austen_sentences() + [(["To", "Elinor", "Marianne", "was", "kind", "."],
                                       ["O", "B-PER", "B-PER", "O", "O", "O"])]
    path = write_columns(tmp_path / f"austen.{scheme.lower()}", sentences, convert)
    stats, data = ingest(tmp_path, path)
    assert stats.tag_scheme == scheme
    got = {tuple(tokens): tags for tokens, tags in (data["train"] + data["validation"] + data["test"])}
    for tokens, tags in sentences:
        expected = tags
        if scheme == "IO":  # IO cannot tell two adjacent entities of one type apart: they merge
            expected = to_iob2(to_io(tags), "IO")
        assert got[tuple(tokens)] == expected


def test_bmes_characters_of_hongloumeng_read_as_character_level_iob2(tmp_path):
    stats, data = ingest(tmp_path, HONGLOUMENG)
    assert stats.tag_scheme == "BMES" and stats.character_level and stats.tag_problems["count"] == 0
    sentences = data["train"] + data["validation"] + data["test"]
    first = next((tokens, tags) for tokens, tags in sentences if "".join(tokens).startswith("甄士隐梦幻"))
    assert first[1][:5] == ["B-PER", "I-PER", "I-PER", "O", "O"]
    names = {"".join(t[a:b]) for t, g in sentences for a, b, kind in entity_spans(g) if kind == "PER"}
    assert {"甄士隐", "贾雨村", "英莲"} <= names


def test_jsonl_with_string_or_integer_tags_and_chosen_fields(tmp_path):
    sentences = austen_sentences(40)
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    plain = tmp_path / "strings.json"
    plain.write_text("".join(json.dumps({"tokens": t, "ner_tags": g}) + "\n" for t, g in sentences))
    integers = tmp_path / "integers.train"
    integers.write_text("".join(json.dumps({"words": t, "labels": [labels.index(x) for x in g], "id": i}) + "\n"
                                for i, (t, g) in enumerate(sentences)))
    custom = tmp_path / "custom.data"
    custom.write_text("".join(json.dumps({"w": t, "y": g}) + "\n" for t, g in sentences))
    _, a = ingest(tmp_path / "a", plain)
    _, b = ingest(tmp_path / "b", integers, label_names=labels)
    _, c = ingest(tmp_path / "c", custom, tokens_field="w", tags_field="y")
    assert a == b == c
    assert sorted(a["train"] + a["validation"] + a["test"]) == sorted(sentences)


def test_format_is_told_by_content_not_extension_and_other_columns_are_ignored(tmp_path):
    sentences = austen_sentences(40)
    tabbed = write_columns(tmp_path / "corpus.dev", sentences, sep="\t", extra_column=True)  # token POS tag
    assert looks_like_token_file(tabbed) and not looks_like_token_file(DATA.parent / "README.md")
    assert not looks_like_token_file(REPO / "tests" / "data" / "authors_train.csv")
    token_file = read_token_file(tabbed)
    assert token_file.kind == "conll"
    assert [(s.tokens, s.tags) for s in token_file.sentences] == sentences


def test_a_split_is_made_by_document_when_the_file_has_docstart_lines(tmp_path):
    stats, data = ingest(tmp_path, AUSTEN["train"], seed=3)
    assert stats.split_made and stats.split_by == "document"
    assert sum(stats.splits.values()) == 420
    again, same = ingest(tmp_path / "again", AUSTEN["train"], seed=3)
    assert same == data
    # A document (chapter) lies in one split only: the sentence order within each split is the file's.
    lines = AUSTEN["train"].read_text(encoding="utf-8").split("-DOCSTART- O\n")
    chapters = [[s.split("\n") for s in block.strip().split("\n\n") if s] for block in lines if block.strip()]
    first_tokens = {split: {tuple(tokens) for tokens, _ in rows} for split, rows in data.items()}
    for chapter in chapters:
        homes = {split for split, seen in first_tokens.items()
                 for sentence in chapter if tuple(line.split()[0] for line in sentence) in seen}
        assert len(homes) == 1


# --- bad input: the file and the line, nothing stored ---------------------------------------------------------

def test_a_token_without_a_tag_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.conll"
    path.write_text("EU B-ORG\nrejects O\nGerman\ncall O\n\nPeter B-PER\n", encoding="utf-8")
    expect_error(tmp_path, path, "broken.conll", "a token with no tag", "line 3")


def test_a_tag_in_no_scheme_names_the_file_the_tag_and_the_line(tmp_path):
    path = tmp_path / "odd.conll"
    path.write_text("EU B-ORG\nrejects O\nGerman X-MISC\ncall O\n", encoding="utf-8")
    expect_error(tmp_path, path, "odd.conll", "'X-MISC'", "line 3")


def test_an_empty_file_is_refused_by_name(tmp_path):
    path = tmp_path / "empty.bio"
    path.write_text("", encoding="utf-8")
    expect_error(tmp_path, path, "empty.bio")
    only_blank = tmp_path / "blank.bio"
    only_blank.write_text("\n\n-DOCSTART- O\n\n", encoding="utf-8")
    expect_error(tmp_path, only_blank, "blank.bio", "no sentences")


def test_mixed_schemes_are_refused_naming_where(tmp_path):
    path = tmp_path / "mixed.bmes"
    path.write_text("张 B-NAME\n三 M-NAME\n丰 E-NAME\n\n李 B-NAME\n四 I-NAME\n", encoding="utf-8")
    expect_error(tmp_path, path, "mixed tag schemes", "first M- at mixed.bmes line 2", "first I- at mixed.bmes line 6")
    train = write_columns(tmp_path / "train.conll", austen_sentences(30))
    dev = write_columns(tmp_path / "dev.conll", austen_sentences(30), to_bioes)  # E-/S- beside train's IOB2
    message = expect_error(tmp_path, train, validation_file=dev)
    assert "dev.conll" in message and ("mixed" in message or "scheme" in message)


def test_jsonl_with_tokens_and_tags_of_different_lengths_names_the_line(tmp_path):
    path = tmp_path / "uneven.jsonl"
    path.write_text(json.dumps({"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG", "O"]}) + "\n"
                    + json.dumps({"tokens": ["German", "call"], "ner_tags": ["B-MISC"]}) + "\n")
    expect_error(tmp_path, path, "uneven.jsonl", "line 2", "2 tokens but 1 tags")
    integers = tmp_path / "ints.jsonl"
    integers.write_text(json.dumps({"tokens": ["EU"], "ner_tags": [3]}) + "\n")
    expect_error(tmp_path, integers, "ints.jsonl", "line 1", "label_names")


def test_impossible_sequences_are_counted_and_located_not_silently_fixed(tmp_path):
    path = tmp_path / "cut.conll"
    path.write_text("the O\nNew B-LOC\nYork I-LOC\n\nof O\nYork I-LOC\nCity I-LOC\n\nand O\nParis B-LOC\n",
                    encoding="utf-8")
    stats, data = ingest(tmp_path, path, validation_fraction=0.34, test_fraction=0.0)
    assert stats.tag_scheme == "IOB2"
    assert stats.tag_problems["count"] == 1 and stats.tag_problems["places"] == ["cut.conll line 6"]
    assert "read as the start of a new entity" in stats.tag_problems["message"]
    rows = data["train"] + data["validation"]
    assert (["of", "York", "City"], ["O", "B-LOC", "I-LOC"]) in rows


def test_an_entity_type_only_in_validation_is_refused(tmp_path):
    train = write_columns(tmp_path / "train.conll", austen_sentences(30))
    dev = tmp_path / "dev.conll"
    dev.write_text("Reuters B-ORG\nsaid O\n", encoding="utf-8")
    expect_error(tmp_path, train, "dev.conll", "ORG", "never occur", validation_file=dev)


def test_studio_upload_refuses_bad_input_and_keeps_what_is_stored(studio, tmp_path):
    from pretrain_studio.errors import StudioError

    good = studio.upload_dataset("austen", AUSTEN["train"], validation_file=AUSTEN["dev"], test_file=AUSTEN["test"])
    assert good["task"] == "token_classification" and good["tag_scheme"] == "IOB2"
    assert good["sentences"] == {"train": 420, "validation": 120, "test": 120}
    assert set(good["entities"]["train"]) == {"LOC", "PER"}
    before = studio.list_datasets()
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    with pytest.raises(StudioError, match="bad.txt.*line 2"):
        studio.upload_dataset("bad", bad, task="token_classification")
    with pytest.raises(StudioError, match="task"):
        studio.upload_dataset("bad", AUSTEN["train"], task="ner")
    assert studio.list_datasets() == before
    assert sorted(p.name for p in studio.workspace.datasets_dir.iterdir()) == sorted(d["dataset_id"] for d in before)
    # A text-classification file is still told apart by its content.
    assert studio.upload_dataset("authors", TESTS_DATA / "authors_train.csv")["task"] == "sequence_classification"


def test_tag_helpers_agree_on_a_hand_checked_example():
    assert split_tag("B-PER") == ("B", "PER") and split_tag("O") == ("O", None) and split_tag("LOC") == ("", "LOC")
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O"]
    assert entity_spans(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]
    assert to_iob2(to_bioes(tags), "BIOES") == tags and to_iob2(to_iob1(tags), "IOB1") == tags
    assert detect_scheme({"f": {"B": "f line 5", "I": "f line 1", "O": "f line 3"}}, [to_iob1(tags)]) == "IOB1"


# --- the shared sets and their traps ---------------------------------------------------------------------------

@pytest.mark.real_data
def test_conll2003_reads_with_the_published_counts(tmp_path):
    stats, data = ingest(tmp_path, CONLL["train"], validation_file=CONLL["valid"], test_file=CONLL["test"])
    assert stats.tag_scheme == "IOB2" and stats.tag_problems["count"] == 0
    assert stats.splits == {"train": 14041, "validation": 3250, "test": 3453}  # -DOCSTART- lines are not sentences
    assert stats.tokens["train"] == 203621
    assert stats.counts["train"] == {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}
    assert stats.counts["test"] == {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}
    assert stats.documents == {"train": 946, "validation": 216, "test": 231}
    assert all(tag for _, tags in data["train"][:500] for tag in tags)  # the trailing space made no empty tag
    assert data["train"][0][0][:2] == ["EU", "rejects"]


@pytest.mark.real_data
def test_resume_ner_bmes_with_tag_sets_that_differ_by_split(tmp_path):
    stats, data = ingest(tmp_path, RESUME["train"], validation_file=RESUME["dev"], test_file=RESUME["test"])
    assert stats.tag_scheme == "BMES" and stats.character_level
    assert stats.splits == {"train": 3821, "validation": 463, "test": 477}
    assert stats.tokens == {"train": 124099, "validation": 13890, "test": 15100}
    assert len(stats.entity_types) == 8 and "LOC" in stats.entity_types
    # The two ORG names cut by the sentence splitter (near lines 62,390 and 64,412): each cut is an entity
    # that never ends and one that never begins, located, not fixed silently.
    assert stats.tag_problems["count"] == 4
    lines = [int(p.rsplit(" ", 1)[1]) for p in stats.tag_problems["places"]]
    assert all(62380 <= n <= 62400 or 64400 <= n <= 64420 for n in lines)
    # S-ORG occurs once, only in train: the label list is train's (O, B- and I- of 8 types).
    assert len(stats.labels) == 17

"""Bad corpus and dataset files (issue 6, "Bad input"): empty, binary, damaged UTF-8, broken CSV, missing columns,
missing or single-class labels, truncated gzip, one enormous line.

Every one is refused with a message that names the file (and the 1-based line, where there is one), the same in the
Studio API, the UI's upload handlers and the CLI, and a refused upload stores nothing: no registry row, no folder, no
partial files, and the corpora and datasets already there stay byte-identical. The one file that is not refused is a
corpus of one enormous line: a user who uploads a book without line breaks expects it to be trained on, so it is read
in bounded pieces and cut at whitespace into documents of at most 1,000,000 characters.

All data is real (the small files in tests/data); the bad files are built from it in temp folders.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from conftest import require
from conftest import AUTHORS, CHESTERTON, HONGLOUMENG, MOBY_DICK, NOVELS_ZH, REPO, write_wikitext_slice
from tiny_models import save_tiny_mlm

from pretrain_studio.studio import Studio, StudioError

HUGE_BYTES = 30_000_000  # one line, no line break
LIMIT = 1_000_000  # MAX_DOCUMENT_CHARS, written out: the number users read in the messages


# ---------------------------------------------------------------------- real data, made bad


def labelled_rows(n: int = 60) -> list[tuple[str, str]]:
    """(label, text) of the first `n` rows of tests/data/novels_zh_{train,dev,test}.csv (3 classes; Chinese
    punctuation, so no text holds an ASCII comma or quote and a CSV needs no quoting), in order, started again
    from the top when `n` is more than the 240 there (for a file big enough to truncate)."""
    rows = []
    for split in ("train", "dev", "test"):
        with NOVELS_ZH[split].open(encoding="utf-8", newline="") as fh:
            rows += [(row["label"], row["text"]) for row in csv.DictReader(fh)]
    assert not any("," in text or '"' in text for _, text in rows)
    return [rows[i % len(rows)] for i in range(n)]


def labelled_csv(rows=None, header: str = "label,text") -> bytes:
    """Labelled rows as a CSV file; line k of the file is rows[k - 2]."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header.split(","))
    writer.writerows(rows or labelled_rows())
    return out.getvalue().encode()


def with_line(data: bytes, line_no: int, new: bytes) -> bytes:
    """`data` with its line `line_no` (1-based) replaced."""
    lines = data.split(b"\n")
    lines[line_no - 1] = new
    return b"\n".join(lines)


def labelled_with_labels(labels: dict[int, str]) -> bytes:
    """A labelled CSV whose label on the given file lines is replaced (by "", "NaN", ...)."""
    rows = labelled_rows()
    for line_no, label in labels.items():
        rows[line_no - 2] = (label, rows[line_no - 2][1])
    return labelled_csv(rows)


def titled_csv(n: int = 40) -> bytes:
    """Three columns under a header (label, title, text): rows of tests/data/authors_train.csv, each titled with its
    first five words, written by the csv module (quoted where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["label", "title", "text"])
    with AUTHORS["train"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i in range(n):
        row = rows[i % len(rows)]
        writer.writerow([row["label"], " ".join(row["text"].split()[:5]), row["text"]])
    return out.getvalue().encode()


def png_bytes() -> bytes:
    """A real PNG picture (noise, so that it compresses badly like a photo)."""
    from PIL import Image

    rng = random.Random(6)
    image = Image.frombytes("RGB", (64, 64), bytes(rng.randrange(256) for _ in range(64 * 64 * 3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def damaged_utf8(path: Path, line_no: int, lines: int = 200) -> bytes:
    """The first lines of a UTF-8 file with one stray 0xFF byte in line `line_no`."""
    data = b"\n".join(path.read_bytes().split(b"\n")[:lines]) + b"\n"
    good = data.split(b"\n")[line_no - 1]
    return with_line(data, line_no, b"\xff" + good)  # at a character boundary: only this byte is bad


def truncated_gzip(data: bytes) -> bytes:
    packed = gzip.compress(data)
    return packed[: len(packed) * 2 // 3]


def labelled_jsonl(labels: dict[int, object] | None = None) -> bytes:
    """Labelled rows as JSON Lines; line k holds rows[k - 1]. `labels` replaces the label of some lines (None, NaN)."""
    lines = []
    for line_no, (label, text) in enumerate(labelled_rows(), start=1):
        lines.append(json.dumps({"text": text, "label": (labels or {}).get(line_no, label)}))
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Studio:
    """A workspace holding the samples plus a corpus and a dataset a user uploaded. No worker: nothing trains."""
    folder = tmp_path_factory.mktemp("bad_files")
    s = Studio(folder / "workspace", start_worker=False)
    s.upload_corpus([write_wikitext_slice(folder / "wiki.txt", lines=300)], "my wiki")
    (folder / "novels.csv").write_bytes(labelled_csv())
    s.upload_dataset("my novels", folder / "novels.csv")
    yield s
    s.close()


@pytest.fixture(scope="module")
def huge_line(tmp_path_factory) -> Path:
    """About 30 MB of WikiText on one line: its line breaks become spaces and the text repeats to size."""
    text = MOBY_DICK.read_bytes().replace(b"\r\n", b" ")
    path = tmp_path_factory.mktemp("huge") / "book.txt"
    path.write_bytes((text * (HUGE_BYTES // len(text) + 1))[:HUGE_BYTES])
    return path


def reset_peak_memory() -> None:
    """Reset this process's peak resident memory (VmHWM), so that it measures only what follows (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        require("Linux /proc/self/clear_refs", False, "a Linux kernel, to measure peak memory")


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the reset) of this process, in KiB."""
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def snapshot(studio: Studio) -> dict:
    """Registry rows of every corpus and dataset, and the hash of every path under corpora/ and datasets/."""
    paths = {}
    for folder in (studio.workspace.corpora_dir, studio.workspace.datasets_dir):
        for path in sorted(folder.rglob("*")):
            rel = str(path.relative_to(studio.workspace.root))
            paths[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return {"corpora": studio.registry.list_corpora(), "datasets": studio.registry.list_datasets(), "paths": paths}


def refused(studio: Studio, upload, fragments: list[str]) -> str:
    """`upload()` must raise StudioError holding every fragment, and leave the workspace exactly as it was."""
    before = snapshot(studio)
    with pytest.raises(StudioError) as info:
        upload()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert snapshot(studio) == before
    return message


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- corpora

CORPUS_CASES = {
    "empty": ("notes.txt", lambda: b"", {}, ["notes.txt: file is empty"]),
    "whitespace only": ("notes.txt", lambda: b"  \n\t\r\n \n\n", {}, ["notes.txt: contains only whitespace"]),
    "png renamed .txt": ("photo.txt", png_bytes, {}, ["photo.txt: looks like binary data, not text"]),
    "random bytes .csv": ("dump.csv", lambda: random.Random(1).randbytes(50_000), {},
                          ["dump.csv: looks like binary data, not text"]),
    "stray byte in UTF-8": ("honglou.txt", lambda: damaged_utf8(HONGLOUMENG, 57), {},
                            ["honglou.txt: line 57: invalid UTF-8 (byte 0xFF)", "save the whole file in one encoding"]),
    "ragged csv row": ("titled.csv", lambda: with_line(titled_csv(), 6, b'3,"Title",text,extra field'), {},
                       ["titled.csv: line 6: 4 fields, but the header has 3"]),
    "unterminated quote": ("novels.csv", lambda: with_line(labelled_csv(header="label,text"), 8, b'0,"never closed'),
                           {}, ["novels.csv: line 8: a quote opened on this line is never closed"]),
    "missing text column": ("titled.csv", titled_csv, {"text_column": "body"},
                            ["titled.csv: no column named 'body'; available columns: 'label', 'title', 'text'"]),
    "truncated .txt.gz": ("wiki.txt.gz", lambda: truncated_gzip(MOBY_DICK.read_bytes()), {},
                          ["wiki.txt.gz: truncated or corrupt gzip"]),
    "truncated .csv.gz": ("titled.csv.gz", lambda: truncated_gzip(titled_csv(2000)), {},
                          ["titled.csv.gz: truncated or corrupt gzip"]),
    "truncated .jsonl.gz": ("novels.jsonl.gz", lambda: truncated_gzip(labelled_jsonl()), {},
                            ["novels.jsonl.gz: truncated or corrupt gzip"]),
}


def test_a_bad_file_among_good_ones_refuses_the_whole_corpus(studio, tmp_path):
    good = write_wikitext_slice(tmp_path / "good.txt", lines=100)
    bad = write(tmp_path, "bad.txt.gz", truncated_gzip(MOBY_DICK.read_bytes()))
    refused(studio, lambda: studio.upload_corpus([good, bad]), ["bad.txt.gz: truncated or corrupt gzip"])


def test_legacy_8bit_text_is_still_read_not_refused_as_damaged_utf8(studio, tmp_path):
    """The stray-byte rule must not catch real Latin-1 files: valid text, just not UTF-8."""
    path = write(tmp_path, "chesterton.txt", CHESTERTON.read_bytes())  # Latin-1; holds "Brunetière, Coppée"
    corpus = studio.upload_corpus([path], txt_mode="paragraphs")
    assert corpus["encodings"]["chesterton.txt"] in ("cp1252", "latin-1")

    from pretrain_studio.data.corpus import load_corpus

    text = " ".join(load_corpus(studio.registry.get_corpus(corpus["corpus_id"])["path"])["text"])
    assert "Brunetière" in text and "Coppée" in text


def test_one_enormous_line_becomes_bounded_documents_in_bounded_memory(studio, huge_line):
    """A 30 MB file without a line break: accepted, cut at whitespace into documents of at most 1,000,000
    characters, all of the text kept in order, and never held whole in memory."""
    reset_peak_memory()
    before = memory_kib("VmRSS")
    corpus = studio.upload_corpus([huge_line], "book")
    growth = (memory_kib("VmHWM") - before) / 1024
    # Read whole, the line costs several times its 30 MB (its copies, and over 400 MB for the list of
    # its words). Read in bounded pieces, the peak is about one Arrow batch and one document's work.
    assert growth < 120, f"resident memory grew by {growth:.0f} MiB while ingesting a 30 MB line"
    assert corpus["long_documents"] == 1
    assert 30 <= corpus["documents"] <= 31  # 30 MB in pieces of at most 1,000,000 characters, cut at whitespace

    from pretrain_studio.data.corpus import load_corpus

    documents = load_corpus(studio.registry.get_corpus(corpus["corpus_id"])["path"])["text"]
    assert max(len(d) for d in documents) <= LIMIT
    original = huge_line.read_text(encoding="utf-8")
    position = 0
    for document in documents:  # every document is the next stretch of the line, cut at whitespace
        start = original.index(document, position)
        assert original[position:start].isspace() or start == position
        end = start + len(document)
        assert end == len(original) or original[end].isspace()
        position = end
    assert not original[position:].strip()


# -------------------------------------------------------------------------- datasets

DATASET_CASES = {
    "empty": ("train.csv", lambda: b"", {}, ["train.csv: file is empty"]),
    "whitespace only": ("train.csv", lambda: b"\n   \n\t\n", {}, ["train.csv: contains only whitespace"]),
    "png renamed .csv": ("train.csv", png_bytes, {}, ["train.csv: looks like binary data, not text"]),
    "random bytes .txt": ("train.txt", lambda: random.Random(2).randbytes(50_000), {},
                          ["train.txt: looks like binary data, not text"]),
    "stray byte in UTF-8": ("reviews.csv", lambda: damaged_utf8(NOVELS_ZH["train"], 23), {},
                            ["reviews.csv: line 23: invalid UTF-8 (byte 0xFF)"]),
    "ragged csv row": ("train.csv", lambda: with_line(labelled_csv(), 5, b"1,a fine film,extra"), {},
                       ["train.csv: line 5: more fields than the 2 in the header"]),
    "unterminated quote": ("train.csv", lambda: with_line(labelled_csv(), 8, b'0,"never closed'), {},
                           ["train.csv: line 8: a quote opened on this line is never closed"]),
    "named label column absent": ("train.csv", labelled_csv, {"label_column": "sentiment"},
                                  ["train.csv: no label column 'sentiment'; available columns: 'label', 'text'"]),
    "no label column at all": ("train.csv", lambda: titled_csv().replace(b"label,title,text", b"source,title,text"),
                               {}, ["train.csv: cannot tell which column holds the label"]),
    "empty labels": ("train.csv", lambda: labelled_with_labels({4: "", 9: " "}), {},
                     ["train.csv: column 'label': empty or missing label on lines 4, 9"]),
    "NaN labels in csv": ("train.csv", lambda: labelled_with_labels({6: "NaN", 7: "null"}), {},
                          ["train.csv: column 'label': empty or missing label on lines 6, 7"]),
    "NaN and null labels in jsonl": ("train.jsonl", lambda: labelled_jsonl({3: float("nan"), 5: None}), {},
                                     ["train.jsonl: column 'label': empty or missing label on lines 3, 5"]),
    "single class": ("train.csv", lambda: labelled_with_labels({n: "1" for n in range(2, 62)}), {},
                     ["train.csv: column 'label' has a single class ('1'); a classifier needs at least two"]),
    "truncated .txt.gz": ("authors.txt.gz", lambda: truncated_gzip(AUTHORS["train"].read_bytes()), {},
                          ["authors.txt.gz: truncated or corrupt gzip"]),
    "truncated .csv.gz": ("novels.csv.gz", lambda: truncated_gzip(labelled_csv(labelled_rows(2000))), {},
                          ["novels.csv.gz: truncated or corrupt gzip"]),
    "truncated .jsonl.gz": ("novels.jsonl.gz", lambda: truncated_gzip(labelled_jsonl() * 40), {},
                            ["novels.jsonl.gz: truncated or corrupt gzip"]),
}


@pytest.mark.parametrize("kind, case", [("corpus", case) for case in CORPUS_CASES]
                         + [("dataset", case) for case in DATASET_CASES])
def test_bad_file_is_refused_and_nothing_is_stored(studio, tmp_path, kind, case):
    name, build, options, fragments = (CORPUS_CASES if kind == "corpus" else DATASET_CASES)[case]
    path = write(tmp_path, name, build())
    if kind == "corpus":
        refused(studio, lambda: studio.upload_corpus([path], "bad", **options), fragments)
    else:
        refused(studio, lambda: studio.upload_dataset("bad", path, **options), fragments)


def test_a_bad_validation_file_is_named(studio, tmp_path):
    train = write(tmp_path, "train.csv", labelled_csv())
    dev = write(tmp_path, "dev.csv.gz", truncated_gzip(labelled_csv(labelled_rows(2000))))
    refused(studio, lambda: studio.upload_dataset("bad", train, validation_file=dev),
            ["dev.csv.gz: truncated or corrupt gzip"])


def test_one_enormous_line_is_refused_as_a_dataset(studio, huge_line):
    """One labelled example per line: a 30 MB line is not an example. Refused at the limit, before it is read whole."""
    refused(studio, lambda: studio.upload_dataset("book", huge_line),
            [f"book.txt: line 1 is over {LIMIT:,} characters, the limit for one example; "
             "does the file have line breaks?"])


# ------------------------------------------------------------------------------- the UI


def handler(demo: gr.Blocks, button_label: str | None = None, component=None):
    """The function an event of the built Blocks calls: a button's click, or a component's change."""
    if button_label is not None:
        component = next(b for b in demo.blocks.values() if isinstance(b, gr.Button) and b.value == button_label)
        trigger = "click"
    else:
        trigger = "change"
    return next(f.fn for f in demo.fns.values() if (component._id, trigger) in f.targets)


def test_upload_handlers_show_the_same_message_as_the_api(studio, tmp_path):
    from pretrain_studio.ui.corpus_tab import build_corpus_tab
    from pretrain_studio.ui.dataset_tab import build_dataset_tab

    with gr.Blocks() as demo:
        build_corpus_tab(studio)
        build_dataset_tab(studio)
    train_file = next(b for b in demo.blocks.values() if isinstance(b, gr.File) and b.label == "Training file")
    photo = write(tmp_path, "photo.txt", png_bytes())
    quoted = write(tmp_path, "train.csv", with_line(labelled_csv(), 8, b'0,"never closed'))

    before = snapshot(studio)
    for call, api in (
        (lambda: handler(demo, "Add corpus")([str(photo)], "", "lines", ""), lambda: studio.upload_corpus([photo])),
        (lambda: handler(demo, component=train_file)(str(photo)), lambda: studio.inspect_dataset_file(photo)),
        (lambda: handler(demo, "Add dataset")("", str(quoted), None, None, "text", "", "label", 42),
         lambda: studio.upload_dataset("", quoted, "text", "label")),
    ):
        with pytest.raises(StudioError) as expected:
            api()
        with pytest.raises(gr.Error) as shown:
            call()
        assert shown.value.message == str(expected.value)
        assert shown.value.message.startswith(("photo.txt: ", "train.csv: line 8: "))
    assert snapshot(studio) == before


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def tiny_base_model(tmp_path_factory) -> Path:
    """A tiny BERT folder: the CLI's finetune checks its settings, base model included, before it reads the files."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    return save_tiny_mlm(folder, write_wikitext_slice(folder.parent / "tiny_bert_corpus.txt", lines=200))


def test_cli_refuses_bad_files_with_exit_status_2_and_stores_nothing(studio, tmp_path, tiny_base_model):
    """The three front doors say the same thing: the CLI prints the Studio's message after "error: "."""
    photo = write(tmp_path, "photo.txt", png_bytes())
    quoted = write(tmp_path, "train.csv", with_line(labelled_csv(), 8, b'0,"never closed'))
    truncated = write(tmp_path, "wiki.txt.gz", truncated_gzip(MOBY_DICK.read_bytes()))
    workspace = ["--workspace", str(studio.workspace.root)]
    commands = {
        "photo.txt: looks like binary data, not text":
            ["pretrain", "--corpus", str(photo), "--model-size", "tiny", "--max-steps", "2"],
        "wiki.txt.gz: truncated or corrupt gzip":
            ["pretrain", "--corpus", str(truncated), "--model-size", "tiny", "--max-steps", "2"],
        "train.csv: line 8: a quote opened on this line is never closed":
            ["finetune", "--train", str(quoted), "--base-model", str(tiny_base_model), "--method", "full",
             "--max-seq-length", "64", "--max-steps", "2"],
    }
    before = snapshot(studio)
    # In parallel: each start imports torch and transformers, which is most of the time they take.
    processes = {expected: subprocess.Popen([sys.executable, "-m", "pretrain_studio", *args, *workspace], cwd=REPO,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for expected, args in commands.items()}
    for expected, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {expected}"), stderr
        assert "Traceback" not in stderr
    assert snapshot(studio) == before

"""Reading token-labelled (NER) files into sentences: CoNLL column files, JSON Lines, character-per-line files.

The format is told by content, never by the file's extension (real files are called `.txt`, `.conll`, `.bio`,
`.bmes`, `.train`, `.dev`, ...): a file whose first non-blank line starts with `{` is JSON Lines, anything else
is read as columns. `file_format="conll"` or `"jsonl"` forces one.

* Columns: one token per line, the tag in the last column, whitespace (spaces or tabs) between columns, blank
  lines between sentences. Other columns (POS, chunk) are ignored; trailing spaces (CoNLL-2003's copies end every
  line with one) do not make an empty last column. `-DOCSTART-` lines start a new document and are not sentences.
  A Chinese file with one character per line is the same format; it is reported as character-level.
* JSON Lines: one sentence per line, a list of tokens and a list of tags (`tokens` and `ner_tags` by default, or
  the first of the usual names; `tokens_field` / `tags_field` choose). Integer tags need `label_names`.

Every problem the user can fix raises `DatasetError` naming the file and the lines. Decoding (UTF-8, cp1252,
Latin-1), gzip and the binary check are the shared readers'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .labelled_readers import DatasetError, reading_errors, resolve_sources, where
from .readers import Source, bounded_lines, choose_encoding, open_text
from .tag_schemes import check_tag_syntax, split_tag

TOKEN_FORMATS = ("auto", "conll", "jsonl")
TOKEN_FIELDS = ("tokens", "words")
TAG_FIELDS = ("ner_tags", "tags", "labels", "label", "ner")
DOCSTART = "-DOCSTART-"
_SNIFF_LINES = 200  # lines task detection looks at


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    lines: list[int]  # the line of each token (JSON Lines: the sentence's line, repeated)
    document: int = 0


@dataclass
class TokenFile:
    """One file as read: its sentences, the format it was read as, and what the summary reports."""

    name: str
    kind: str  # "conll" or "jsonl"
    encoding: str
    sentences: list[Sentence] = field(default_factory=list)
    documents: int = 0  # -DOCSTART- lines seen (0: none)
    prefixes: set[str] = field(default_factory=set)
    first_place: dict[str, str] = field(default_factory=dict)  # prefix -> "file line N" of its first use

    def place(self, line: int) -> str:
        return f"{self.name} line {line}"


def read_token_file(path: str | Path, file_format: str = "auto", tokens_field: str | None = None,
                    tags_field: str | None = None, label_names: list[str] | None = None,
                    source: Source | None = None) -> TokenFile:
    """Read one token-labelled file whole."""
    if file_format not in TOKEN_FORMATS:
        raise DatasetError(f"unknown file_format {file_format!r} for token classification "
                           f"(expected one of {', '.join(TOKEN_FORMATS)})")
    if source is None:
        (source,) = resolve_sources({"file": path}).values()
    with reading_errors(source):
        encoding = choose_encoding(source)
        with open_text(source, encoding, newline=None) as stream:
            lines = list(bounded_lines(stream, source.name, "token line"))
    kind = file_format if file_format != "auto" else _sniff_kind(lines)
    out = TokenFile(name=source.name, kind=kind, encoding=encoding)
    if kind == "jsonl":
        _read_jsonl(lines, out, tokens_field, tags_field, label_names)
    else:
        _read_columns(lines, out)
    if not out.sentences:
        raise DatasetError(f"{source.name}: no sentences (expected one token and its tag per line, blank lines "
                           "between sentences, or JSON Lines with a list of tokens and a list of tags)")
    bad = [(s.lines[i], t) for s in out.sentences for i, t in enumerate(s.tags) if not check_tag_syntax(t)]
    if bad:
        examples = ", ".join(sorted({repr(t) for _, t in bad})[:5])
        raise DatasetError(f"{source.name}: {len(bad)} tag(s) not in any tag scheme ({examples}) on "
                           f"{where('line', [line for line, _ in bad])}: a tag is O or B-/I-/E-/S-/M-<TYPE>")
    for sentence in out.sentences:
        for tag, line in zip(sentence.tags, sentence.lines):
            prefix, _ = split_tag(tag)
            if prefix not in out.prefixes:
                out.prefixes.add(prefix)
                out.first_place[prefix] = out.place(line)
    return out


def _sniff_kind(lines: list[str]) -> str:
    first = next((line.strip() for line in lines if line.strip()), "")
    return "jsonl" if first.startswith("{") else "conll"


def _read_columns(lines: list[str], out: TokenFile) -> None:
    tokens, tags, positions = [], [], []
    untagged: list[int] = []
    document = 0

    def close():
        if tokens:
            out.sentences.append(Sentence(list(tokens), list(tags), list(positions), document))
            tokens.clear(), tags.clear(), positions.clear()

    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == DOCSTART:
            close()
            out.documents += 1
            document = out.documents
            continue
        if fields[0].startswith("{"):
            raise DatasetError(f"{out.name}: line {number} looks like JSON in a column file; "
                               "give file_format=jsonl if the file is JSON Lines")
        if len(fields) < 2:
            untagged.append(number)
            continue
        tokens.append(fields[0])
        tags.append(fields[-1])
        positions.append(number)
    close()
    if untagged:
        raise DatasetError(f"{out.name}: a token with no tag on {where('line', untagged)} (expected the token, then "
                           "its tag in the last column)")


def _read_jsonl(lines: list[str], out: TokenFile, tokens_field: str | None, tags_field: str | None,
                label_names: list[str] | None) -> None:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{out.name}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{out.name}: line {number} is not a JSON object")
        tok = _field(record, tokens_field, TOKEN_FIELDS, out.name, number, "tokens")
        tag = _field(record, tags_field, TAG_FIELDS, out.name, number, "tags")
        tokens, tags = record[tok], record[tag]
        if not isinstance(tokens, list) or not isinstance(tags, list):
            raise DatasetError(f"{out.name}: line {number}: {tok!r} and {tag!r} must both be lists")
        if len(tokens) != len(tags):
            raise DatasetError(f"{out.name}: line {number}: {len(tokens)} tokens but {len(tags)} tags "
                               f"({tok!r} and {tag!r} must have one entry per token)")
        if not tokens:
            continue
        if any(not isinstance(t, str) or not t.strip() for t in tokens):
            raise DatasetError(f"{out.name}: line {number}: every token in {tok!r} must be a non-empty string")
        tags = [_tag_name(t, label_names, out.name, number, tag) for t in tags]
        out.sentences.append(Sentence([t.strip() for t in tokens], tags, [number] * len(tokens)))


def _field(record: dict, chosen: str | None, usual: tuple[str, ...], name: str, number: int, role: str) -> str:
    if chosen:
        if chosen not in record:
            raise DatasetError(f"{name}: line {number} has no field {chosen!r} (fields: {', '.join(map(repr, record))})")
        return chosen
    found = next((f for f in usual if f in record), None)
    if found is None:
        raise DatasetError(f"{name}: line {number}: no {role} field (looked for {', '.join(usual)}; fields: "
                           f"{', '.join(map(repr, record))}); choose it with {'tokens_field' if role == 'tokens' else 'tags_field'}")
    return found


def _tag_name(tag, label_names: list[str] | None, name: str, number: int, field_name: str) -> str:
    if isinstance(tag, bool) or not isinstance(tag, (str, int)):
        raise DatasetError(f"{name}: line {number}: {field_name!r} holds {tag!r}; tags are strings or integers")
    if isinstance(tag, str):
        return tag.strip()
    if not label_names:
        raise DatasetError(f"{name}: line {number}: integer tags in {field_name!r} need their names: give "
                           "label_names (e.g. O,B-PER,I-PER,... in the order of the integers)")
    if not 0 <= tag < len(label_names):
        raise DatasetError(f"{name}: line {number}: tag {tag} has no name (label_names has {len(label_names)})")
    return label_names[tag]


def looks_like_token_file(path: str | Path) -> bool:
    """Whether a file holds token-labelled data (for task="auto"): JSON Lines whose records hold a list of tokens,
    or column lines whose last column is O or a prefixed tag, with blank lines between groups."""
    try:
        (source,) = resolve_sources({"file": path}).values()
        with reading_errors(source):
            encoding = choose_encoding(source)
            with open_text(source, encoding, newline=None) as stream:
                lines = [stream.readline(100_000) for _ in range(_SNIFF_LINES)]
    except (DatasetError, OSError):
        return False
    lines = [line for line in lines if line]
    filled = [line.split() for line in lines if line.strip()]
    if not filled:
        return False
    if filled[0][0].startswith("{"):
        try:
            record = json.loads(lines[0])
        except json.JSONDecodeError:
            return False
        return isinstance(record, dict) and any(isinstance(record.get(f), list) for f in TOKEN_FIELDS)
    tagged = [f for f in filled if f[0] != DOCSTART]
    if not tagged:
        return False
    tag_like = sum(1 for f in tagged if 2 <= len(f) <= 12 and (f[-1] == "O" or split_tag(f[-1])[0] not in ("", "O")))
    has_breaks = len(filled) < len(lines) or any(f[0] == DOCSTART for f in filled)
    return tag_like >= 0.9 * len(tagged) and (has_breaks or len(tagged) < _SNIFF_LINES)


def parse_label_names(value) -> list[str] | None:
    """label_names as given: a list, a comma- or newline-separated string, or a file of one name per line."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, (list, tuple)):
        names = [str(v).strip() for v in value]
    else:
        text = str(value)
        path = Path(text)
        if "\n" not in text and "," not in text and path.is_file():
            text = path.read_text(encoding="utf-8")
        names = [n.strip() for n in text.replace("\n", ",").split(",")]
    names = [n for n in names if n]
    return names or None

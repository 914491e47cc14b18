"""Reading corpus files: opening (gzip or not), choosing the encoding, refusing binary data and damaged
UTF-8, and one reader per format (txt lines or paragraphs, JSON Lines, CSV/TSV, Parquet).

Every reader streams: it yields one record per document (a string, or None for a missing
value) and never holds a whole file in memory, not even one enormous line (documents are at most
MAX_DOCUMENT_CHARS; longer ones are cut at whitespace). Problems the user can fix raise
`CorpusError` naming the file and, where it applies, the line. Used by `corpus.py`; the labelled
readers share the opening, the encoding, `csv_records` and `bounded_lines`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import re
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import UserError

_READ_CHUNK = 1 << 20  # 1 MiB: copying decompressed bytes
# The encoding scan decodes in small pieces: decoding 1 MiB chunks into strings makes glibc's malloc
# move its mmap threshold up and fragment its heap, and resident memory then grows with the file
# (about 50 MB over a 400 MB file); 8 KiB pieces stay flat and decode just as fast.
_SCAN_CHUNK = 8192
_SNIFF_BYTES = 8192  # how much of the start of a file the binary check looks at
_CONTROL_SHARE_LIMIT = 0.10  # more control bytes than this in the sniffed start means binary
# Control bytes that really occur in text files: tab, LF, VT, FF, CR and ESC.
_TEXT_CONTROLS = frozenset(b"\t\n\x0b\x0c\r\x1b")
_PARQUET_BATCH = 10_000  # rows per Parquet batch
# One document (or labelled example) is at most this many characters. A .txt file without line breaks
# is one enormous "line": read whole, it would cost memory in proportion to the file (and a single
# document cannot be split into training and held-out parts). Longer corpus documents are cut at
# whitespace into pieces of at most this size; MLM packing concatenates documents anyway, so
# nothing is lost. Labelled examples this long are refused: no classifier reads a million characters.
MAX_DOCUMENT_CHARS = 1_000_000
# A UTF-8 decode of a non-UTF-8 file turns each bad byte into one of these (errors="surrogateescape").
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
# Fed to the csv reader after the last line: it comes back as a row of its own unless a quoted
# field is still open, which then swallows it (csv itself says nothing of an unclosed quote).
_CSV_END = "\x00end-of-file\x00"


class CorpusError(UserError):
    """Bad corpus input; the message names the file and the problem (and the row where it applies)."""


@dataclass(frozen=True)
class Source:
    """One input file and how it will be read."""

    path: Path
    name: str  # what messages and stats call the file
    kind: str  # a value of _FORMATS
    gzipped: bool


# ------------------------------------------------------------------------ file access


def open_binary(source: Source) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is gzipped."""
    if source.gzipped:
        return gzip.open(source.path, "rb")
    return open(source.path, "rb")


@contextmanager
def open_text(source: Source, encoding: str, newline: str | None) -> Iterator[io.TextIOWrapper]:
    raw = open_binary(source)
    # errors="strict" is safe because choose_encoding already decoded the whole file this way.
    stream = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline=newline)
    try:
        yield stream
    finally:
        stream.close()


@contextmanager
def file_errors(source: Source) -> Iterator[None]:
    """Turn low-level read errors into CorpusErrors that name the file."""
    try:
        yield
    except CorpusError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # gzip reports truncation as EOFError and damage as BadGzipFile or zlib.error.
        raise CorpusError(f"{source.name}: truncated or corrupt gzip ({exc})") from exc
    except UnicodeDecodeError as exc:  # only possible if the file changed while it was being read
        raise CorpusError(f"{source.name}: could not decode the text ({exc.reason})") from exc
    except OSError as exc:
        raise CorpusError(f"{source.name}: cannot read file ({exc.strerror or exc})") from exc


def choose_encoding(source: Source) -> str:
    """Check the start of the file for binary data, then find the first encoding that decodes all of it.

    This is a full streaming pass before the real read. It is needed because one invalid
    byte near the end of a file decides the encoding for all of it.
    """
    with open_binary(source) as raw:
        head = raw.read(_SNIFF_BYTES)
    if not head:
        raise CorpusError(key="error.file_empty", file=source.name)
    _reject_binary(source, head)

    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # Latin-1 decodes any bytes
        result = _scan(source, encoding)
        if result is not None:
            break
        if encoding == "utf-8-sig":
            _reject_damaged_utf8(source)
    has_chars, has_text = result
    if not has_chars:  # e.g. only a UTF-8 byte-order mark
        raise CorpusError(key="error.file_empty", file=source.name)
    if not has_text:
        raise CorpusError(f"{source.name}: contains only whitespace")
    return encoding


def _scan(source: Source, encoding: str) -> tuple[bool, bool] | None:
    """Decode the whole file in chunks. Returns (any characters, any non-whitespace), or None if it does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    has_chars = has_text = False
    with open_binary(source) as raw:
        while True:
            chunk = raw.read(_SCAN_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                return None
            if text:
                has_chars = True
                has_text = has_text or bool(text.strip())
            if not chunk:
                return has_chars, has_text


def _reject_damaged_utf8(source: Source) -> None:
    """Refuse a UTF-8 file with a few bad bytes, naming the line of the first one.

    A legacy 8-bit file (Latin-1, cp1252) hardly ever holds a valid UTF-8 multi-byte sequence, so
    when valid ones outnumber the bad bytes the file is UTF-8 that got damaged (or had text in another
    encoding pasted in). Reading it all as cp1252 would turn every one of its non-ASCII characters
    into garbage, silently.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    bad = valid = lines_before = 0
    first: tuple[int, int] | None = None  # (line, byte value) of the first bad byte
    with open_binary(source) as raw:
        while True:
            chunk = raw.read(_SCAN_CHUNK)
            text = decoder.decode(chunk, final=not chunk)
            if not text.isascii():
                escaped = len(_ESCAPED_BYTE.findall(text))
                if escaped and first is None:
                    at = _ESCAPED_BYTE.search(text).start()
                    first = (lines_before + text.count("\n", 0, at) + 1, ord(text[at]) - 0xDC00)
                bad += escaped
                valid += len(_NON_ASCII.findall(text)) - escaped
            lines_before += text.count("\n")
            if not chunk:
                break
    if first is not None and valid > bad:
        line, byte = first
        more = f" ({bad:,} bad bytes in all)" if bad > 1 else ""
        raise CorpusError(
            f"{source.name}: line {line}: invalid UTF-8 (byte 0x{byte:02X}){more}; the rest of the file is UTF-8, "
            "so it looks damaged or mixes encodings: fix that line, or save the whole file in one encoding"
        )


def _reject_binary(source: Source, head: bytes) -> None:
    """Refuse data that is clearly not text, before it becomes a corpus of garbage."""
    if head.startswith(b"\x1f\x8b"):
        raise CorpusError(f"{source.name}: looks like gzip-compressed data; give the file a .gz extension")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CorpusError(f"{source.name}: looks like UTF-16 text; save it as UTF-8")
    controls = sum(1 for byte in head if (byte < 0x20 and byte not in _TEXT_CONTROLS) or byte == 0x7F)
    if b"\x00" in head or controls > _CONTROL_SHARE_LIMIT * len(head):
        raise CorpusError(f"{source.name}: looks like binary data, not text")


# ---------------------------------------------------------------------------- readers
# Each reader yields one record per document: a string, or None for a missing value.
# Cleaning and counting happen in _Collector, so every format gets the same treatment.


def cut_long(text: str, limit: int = MAX_DOCUMENT_CHARS) -> tuple[list[str], str]:
    """Cut pieces of at most `limit` characters off the front of `text` until the rest is no longer than that.

    Each cut falls after the last whitespace in the back half of the piece, so words stay whole;
    text without spaces there (Chinese, say) is cut at the limit. Returns (pieces, rest).
    """
    pieces, start = [], 0
    while len(text) - start > limit:
        end = start + limit
        space = max(text.rfind(" ", start + limit // 2, end), text.rfind("\n", start + limit // 2, end))
        cut = space + 1 if space >= 0 else end
        pieces.append(text[start:cut])
        start = cut
    return pieces, text[start:]


def read_lines(stream: io.TextIOWrapper, on_long: Callable[[], None] = lambda: None) -> Iterator[str]:
    """txt_mode="lines": every line is a document. Blank lines come out empty and are counted.

    Memory stays bounded whatever the length of a line: a line over MAX_DOCUMENT_CHARS (a file without
    line breaks, say) is read in pieces and comes out cut by `cut_long`; `on_long` is called once for it.
    """
    rest, is_long = "", False
    while chunk := stream.readline(MAX_DOCUMENT_CHARS):
        line_ends = chunk.endswith("\n") or len(chunk) < MAX_DOCUMENT_CHARS
        if line_ends and not rest:  # the usual case: a whole line
            yield chunk
            continue
        pieces, rest = cut_long(rest + chunk)
        if pieces and not is_long:
            is_long = True
            on_long()
        yield from pieces
        if line_ends:
            yield rest
            rest, is_long = "", False
    if rest:
        yield rest


def read_paragraphs(stream: io.TextIOWrapper, on_long: Callable[[], None] = lambda: None) -> Iterator[str | None]:
    """txt_mode="paragraphs": blank lines separate documents; the wrapped lines of a paragraph are joined with spaces.

    A paragraph over MAX_DOCUMENT_CHARS is cut as in `read_lines` (calling `on_long` once), so memory stays bounded.
    """
    return paragraphs_from_lines(read_lines(stream), on_long)


def paragraphs_from_lines(lines: Iterable[str], on_long: Callable[[], None] = lambda: None) -> Iterator[str | None]:
    """`read_paragraphs` on lines that were already read (by `read_lines`, without its `on_long`: a long paragraph
    is counted here, once) and perhaps filtered (corpus cleaning drops boilerplate lines before they are joined)."""
    paragraph: list[str] = []
    size, is_long = 0, False
    for line in lines:
        line = line.strip()
        if line:
            paragraph.append(line)
            size += len(line) + 1
            if size > MAX_DOCUMENT_CHARS:
                pieces, rest = cut_long(" ".join(paragraph))
                if not is_long:
                    is_long = True
                    on_long()
                yield from pieces
                paragraph, size = [rest], len(rest)
            continue
        yield None  # the blank line itself, so it is counted like in "lines" mode
        if paragraph:
            yield " ".join(paragraph)
            paragraph, size, is_long = [], 0, False
    if paragraph:
        yield " ".join(paragraph)


def bounded_lines(stream: io.TextIOWrapper, name: str, what: str) -> Iterator[str]:
    """The stream's lines, refusing (before reading it whole) a line over MAX_DOCUMENT_CHARS: one `what` per line
    (a labelled example, a text to classify) cannot be that long; most likely the file has no line breaks."""
    for line_no in itertools.count(1):
        line = stream.readline(MAX_DOCUMENT_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_DOCUMENT_CHARS and not line.endswith(("\n", "\r")):
            raise CorpusError(
                f"{name}: line {line_no} is over {MAX_DOCUMENT_CHARS:,} characters, the limit for one {what}; "
                "does the file have line breaks?"
            )
        yield line


def read_jsonl(stream: io.TextIOWrapper, name: str, column: str) -> Iterator[str | None]:
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            yield None
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = ""
            if line_no == 1 and line.lstrip().startswith("["):
                hint = "; this looks like a JSON array, but one JSON object per line (JSON Lines) is expected"
            raise CorpusError(f"{name}: line {line_no}: malformed JSON ({exc.msg}){hint}") from exc
        if not isinstance(record, dict):
            raise CorpusError(
                f"{name}: line {line_no}: expected a JSON object, found {_json_type(record)}"
            )
        if column not in record:
            keys = ", ".join(repr(k) for k in record) or "(none)"
            raise CorpusError(f"{name}: line {line_no}: no key {column!r}; keys on this line: {keys}")
        value = record[column]
        if value is not None and not isinstance(value, str):
            raise CorpusError(
                f"{name}: line {line_no}: {column!r} holds {_json_type(value)}, expected a string"
            )
        yield value


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def csv_records(lines: Iterator[str], name: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of every CSV/TSV record, blank ones included (as []).

    `lines` must come from a stream opened with newline="", so that quoted fields keep their line
    breaks. Quoting errors raise CorpusError naming the line where the record starts; that includes
    a quote that is never closed, which the csv module would silently let swallow the rest of the file.
    """
    # The default limit (128 KiB per field) is too small for documents stored in a cell.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(itertools.chain(lines, [_CSV_END]), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            first_line, start = start, reader.line_num + 1
            if row == [_CSV_END]:
                return
            if row and row[-1].endswith(_CSV_END):
                raise CorpusError(
                    f"{name}: line {first_line}: a quote opened on this line is never closed, so the field runs "
                    "to the end of the file; check the quoting"
                )
            yield first_line, row
    except csv.Error as exc:
        raise CorpusError(f"{name}: line {start}: {exc}") from exc


def read_delimited(
    stream: io.TextIOWrapper, name: str, text_column: str | None, delimiter: str
) -> Iterator[str | None]:
    """CSV/TSV with a header row, parsed by the csv module so that quoted fields may hold delimiters and newlines."""
    records = csv_records(stream, name, delimiter)
    header = next((row for _, row in records if row), None)
    if header is None:
        raise CorpusError(f"{name}: no header row")
    index = header.index(_pick_column(name, header, text_column))
    for line, row in records:
        if not row:  # a blank line between records
            yield None
            continue
        if len(row) > len(header):
            raise CorpusError(
                f"{name}: line {line}: {len(row)} fields, but the header has {len(header)}; "
                "check the delimiter and the quoting"
            )
        # Fewer fields than the header means missing values, as in pandas.
        yield row[index] if index < len(row) else None


def read_parquet(source: Source, text_column: str | None, work_dir: Path) -> Iterator[list[str | None]]:
    """Yields the text column one batch at a time, so only a row group's worth is ever in memory."""
    path = source.path
    if source.gzipped:
        # Parquet needs random access (the schema is in the footer), which a gzip stream
        # cannot give cheaply. Decompress to a scratch file first, in bounded chunks.
        path = work_dir / f"decompressed-{uuid.uuid4().hex[:8]}.parquet"
        with open_binary(source) as raw, open(path, "wb") as out:
            shutil.copyfileobj(raw, out, _READ_CHUNK)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{source.name}: not a valid Parquet file ({exc})") from exc

    with parquet:
        schema = parquet.schema_arrow
        column = _pick_column(source.name, schema.names, text_column)
        column_type = schema.field(column).type
        if not (
            pa.types.is_string(column_type)
            or pa.types.is_large_string(column_type)
            or pa.types.is_string_view(column_type)
            or pa.types.is_null(column_type)
        ):
            raise CorpusError(f"{source.name}: column {column!r} holds {column_type}, expected strings")
        try:
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=[column]):
                yield batch.column(0).to_pylist()
        except pa.ArrowException as exc:
            raise CorpusError(f"{source.name}: cannot read the Parquet data ({exc})") from exc


def _pick_column(name: str, columns: list[str], text_column: str | None) -> str:
    """The requested column. Without a request: "text", or the only column there is."""
    available = ", ".join(repr(c) for c in columns)
    if text_column is not None:
        if text_column not in columns:
            raise CorpusError(key="error.no_column_named", file=name, column=repr(text_column), available=available)
        return text_column
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    raise CorpusError(
        f"{name}: no column named 'text'; choose the text column from the available columns: {available}"
    )

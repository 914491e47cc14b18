"""Reading corpus files: opening (gzip or not), choosing the encoding, refusing binary data, and one
reader per format (txt lines or paragraphs, JSON Lines, CSV/TSV, Parquet).

Every reader streams: it yields one record per document (a string, or None for a missing
value) and never holds a whole file in memory. Problems the user can fix raise
`CorpusError` naming the file and, where it applies, the line. Used by `corpus.py`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


class CorpusError(ValueError):
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
        raise CorpusError(f"{source.name}: file is empty")
    _reject_binary(source, head)

    for encoding in ("utf-8-sig", "cp1252", "latin-1"):  # Latin-1 decodes any bytes
        result = _scan(source, encoding)
        if result is not None:
            break
    has_chars, has_text = result
    if not has_chars:  # e.g. only a UTF-8 byte-order mark
        raise CorpusError(f"{source.name}: file is empty")
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


def read_lines(stream: io.TextIOWrapper) -> Iterator[str]:
    """txt_mode="lines": every line is a document. Blank lines come out empty and are counted."""
    yield from stream


def read_paragraphs(stream: io.TextIOWrapper) -> Iterator[str | None]:
    """txt_mode="paragraphs": blank lines separate documents. The wrapped lines inside a paragraph are joined with spaces."""
    lines: list[str] = []
    for line in stream:
        line = line.strip()
        if line:
            lines.append(line)
            continue
        yield None  # the blank line itself, so it is counted like in "lines" mode
        if lines:
            yield " ".join(lines)
            lines = []
    if lines:
        yield " ".join(lines)


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


def read_delimited(
    stream: io.TextIOWrapper, name: str, text_column: str | None, delimiter: str
) -> Iterator[str | None]:
    """CSV/TSV with a header row, parsed by the csv module so that quoted fields may hold delimiters and newlines."""
    # The default limit (128 KiB per field) is too small for documents stored in a cell.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            raise CorpusError(f"{name}: no header row")
        index = header.index(_pick_column(name, header, text_column))
        for row in reader:
            if not row:  # a blank line between records
                yield None
                continue
            if len(row) > len(header):
                raise CorpusError(
                    f"{name}: line {reader.line_num}: {len(row)} fields, but the header has {len(header)}; "
                    "check the delimiter and the quoting"
                )
            # Fewer fields than the header means missing values, as in pandas.
            yield row[index] if index < len(row) else None
    except csv.Error as exc:
        raise CorpusError(f"{name}: line {reader.line_num}: {exc}") from exc


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
            raise CorpusError(f"{name}: no column named {text_column!r}; available columns: {available}")
        return text_column
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    raise CorpusError(
        f"{name}: no column named 'text'; choose the text column from the available columns: {available}"
    )


def publish(built: Path, dest: Path) -> None:
    """Move a finished dataset folder to dest, replacing an earlier one only once the new one is in place.
    Shared by corpus and labelled-dataset ingestion: all or nothing, never a half-written folder at dest."""
    if not dest.exists():
        built.rename(dest)
        return
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    dest.rename(old)
    try:
        built.rename(dest)
    except BaseException:
        old.rename(dest)  # put the previous one back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dataset(dest: Path, error: type[Exception], what: str) -> Iterator[Path]:
    """Build a dataset in a temporary sibling of `dest` (yielded; save it as `<work_dir>/dataset`), then publish it.
    All or nothing: on any failure nothing new is left at `dest`, and unexpected errors (disk full,
    permissions) become `error` saying "could not <what> at <dest>"."""
    work_dir: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A sibling of dest, so the final rename stays on one filesystem and is atomic.
        work_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
        yield work_dir
        publish(work_dir / "dataset", dest)
    except error:
        raise
    except Exception as exc:
        raise error(f"could not {what} at {dest}: {exc}") from exc
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)

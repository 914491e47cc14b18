"""Corpus ingestion speed and peak memory as the corpus grows.

    python bench/ingest_speed.py [--sizes 20 200] [--format txt jsonl csv]

For each size (MB of UTF-8 text) and format it writes a corpus file into a temporary folder,
made of real text from the shared data (WikiText-2 and the Gutenberg books, one document per
line) repeated until the size is reached. Every pass over the source is numbered at the start of
its lines, so the documents stay distinct, as in a real corpus (a verbatim repeat would be counted
as duplicates and hide what the duplicate check costs). The file is then ingested in a fresh
Python process by `ingest_corpus` with the arguments `Studio.upload_corpus` passes it
(txt_mode "lines", the "text" column for jsonl and csv), so that the peak resident memory
(`ru_maxrss` of that process) belongs to that size alone. It reports MB/s (input bytes over
ingest time), peak RSS, the RSS of the process before ingesting (imports), and the ratio of peak
RSS between the largest and the smallest size (goal: about 1, memory flat as the corpus grows).
Everything it writes is deleted at the end. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MB = 1_000_000


def source_lines() -> list[str]:
    """The non-empty lines of WikiText-2 and the Gutenberg books."""
    from pretrain_studio.shared_data import require_shared_data  # the child process needs none of it

    DATA = require_shared_data(what="bench/ingest_speed.py needs")
    lines = []
    for path in [DATA / "wikitext2_raw" / "wiki.test.raw", *sorted((DATA / "gutenberg_nltk").glob("*.txt"))]:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # two of the Gutenberg books are Latin-1
            text = data.decode("latin-1")
        lines.extend(line.strip() for line in text.splitlines() if line.strip())
    return lines


def record(document: str, fmt: str) -> str:
    """One document as a line of the format (csv: a "text" column, every field quoted)."""
    if fmt == "jsonl":
        return json.dumps({"text": document}, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return '"' + document.replace('"', '""') + '"\n'
    return document + "\n"


def write_corpus(path: Path, size_mb: int, fmt: str, lines: list[str]) -> int:
    """Write whole documents in the format up to size_mb MB; return the file's size in bytes."""
    target = size_mb * MB
    with path.open("wb") as fh:
        written = fh.write(b"text\n") if fmt == "csv" else 0
        pass_no = 0
        while written < target:
            pass_no += 1
            chunk = "".join(record(f"{pass_no} {line}", fmt) for line in lines).encode("utf-8")
            if written + len(chunk) > target:  # the last pass: up to the last whole line within the size
                chunk = chunk[: chunk.rfind(b"\n", 0, target - written) + 1]
                written += fh.write(chunk)
                break
            written += fh.write(chunk)
    return path.stat().st_size


def child(file: Path, dest: Path) -> None:
    """Runs in a fresh process: ingest one file as the app does and print what it cost."""
    from pretrain_studio.data.corpus import ingest_corpus

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    # Studio.upload_corpus(files, name, txt_mode="lines", text_column="") -> these arguments.
    stats = ingest_corpus([file], dest, txt_mode="lines", text_column=None)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "documents": stats.documents, "duplicates": stats.duplicate_documents,
                      "rss_before_kib": before, "peak_rss_kib": peak}))


def measure(file: Path, dest: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(file), str(dest)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"ingest of {file.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200], help="corpus sizes in MB")
    parser.add_argument("--format", nargs="+", default=["txt"], choices=["txt", "jsonl", "csv"])
    args = parser.parse_args()

    lines = source_lines()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    results: dict[str, dict] = {}
    try:
        for fmt in args.format:
            results[fmt] = {}
            for size in sorted(args.sizes):
                file = tmp / f"corpus-{size}mb.{fmt}"
                nbytes = write_corpus(file, size, fmt, lines)
                run = measure(file, tmp / "corpus")
                file.unlink()
                shutil.rmtree(tmp / "corpus", ignore_errors=True)
                results[fmt][f"{size}MB"] = {
                    "input_mb": round(nbytes / MB, 1), "documents": run["documents"],
                    "duplicates": run["duplicates"], "seconds": round(run["seconds"], 2),
                    "mb_per_second": round(nbytes / MB / run["seconds"], 2),
                    "peak_rss_mb": round(run["peak_rss_kib"] * 1024 / MB, 1),
                    "rss_before_ingest_mb": round(run["rss_before_kib"] * 1024 / MB, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'format':7} {'size':>7} {'documents':>10} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12} "
          f"{'RSS before MB':>14}")
    ratios = {}
    for fmt, by_size in results.items():
        for label, r in by_size.items():
            print(f"{fmt:7} {label:>7} {r['documents']:>10,} {r['seconds']:>8.2f} {r['mb_per_second']:>7.2f} "
                  f"{r['peak_rss_mb']:>12.1f} {r['rss_before_ingest_mb']:>14.1f}")
        peaks = [r["peak_rss_mb"] for r in by_size.values()]
        ratios[fmt] = round(peaks[-1] / peaks[0], 3)
        labels = list(by_size)
        print(f"{fmt:7} peak RSS {labels[-1]} / {labels[0]}: {ratios[fmt]:.2f} (goal: about 1)")
    print(json.dumps({"sizes_mb": sorted(args.sizes), "results": results, "peak_rss_ratio_largest_smallest": ratios,
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()

"""What each corpus cleaning filter (issue 16) costs in seconds and what it removes, on real Gutenberg text.

    python bench/cleaning_speed.py [--data gutenberg_nltk pretrain_en] [--txt-mode lines paragraphs]

For each folder of the shared data (its .txt files, subfolders included) and each txt mode, the files are
ingested once per setting: no cleaning at all (dedupe off), the default (exact de-duplication), and the default
plus one optional filter at a time (strip_gutenberg, drop_boilerplate_lines, near_duplicates), then all of them.
A filter's cost is its ingest time minus the default's. Prints a table and one JSON line; the corpora are written
to a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETTINGS = {
    "none": {"dedupe": False},
    "default (dedupe)": {},
    "+strip_gutenberg": {"strip_gutenberg": True},
    "+drop_boilerplate_lines": {"drop_boilerplate_lines": True},
    "+near_duplicates": {"near_duplicates": True},
    "all": {"strip_gutenberg": True, "drop_boilerplate_lines": True, "near_duplicates": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["gutenberg_nltk"], help="folders of the shared data")
    parser.add_argument("--txt-mode", nargs="+", default=["lines", "paragraphs"], choices=["lines", "paragraphs"])
    args = parser.parse_args()

    from pretrain_studio.data.corpus import ingest_corpus
    from pretrain_studio.shared_data import require_shared_data

    data = require_shared_data(what="bench/cleaning_speed.py needs")
    results = []
    work = Path(tempfile.mkdtemp(prefix="cleaning-speed-"))
    try:
        for folder in args.data:
            files = sorted((data / folder).rglob("*.txt"))
            size = sum(f.stat().st_size for f in files)
            for mode in args.txt_mode:
                base = None
                for label, options in SETTINGS.items():
                    dest = work / "corpus"
                    shutil.rmtree(dest, ignore_errors=True)
                    start = time.perf_counter()
                    stats = ingest_corpus(files, dest, txt_mode=mode, **options)
                    seconds = time.perf_counter() - start
                    if label == "default (dedupe)":
                        base = seconds
                    row = {"data": folder, "files": len(files), "bytes": size, "txt_mode": mode, "setting": label,
                           "seconds": round(seconds, 2),
                           "extra_seconds": None if base is None or label == "default (dedupe)"
                           else round(seconds - base, 2),
                           "documents": stats.documents, "words": stats.words,
                           "duplicate_documents": stats.duplicate_documents, "removed": stats.removed,
                           "gutenberg_files": stats.gutenberg_files}
                    results.append(row)
                    removed = ", ".join(f"{k}={v:,}" for k, v in stats.removed.items() if v) or "-"
                    extra = "" if row["extra_seconds"] is None else f" ({row['extra_seconds']:+.2f} s)"
                    print(f"{folder:15} {mode:10} {label:24} {seconds:7.2f} s{extra:12} "
                          f"{stats.documents:>9,} docs {stats.words:>11,} words  removed: {removed}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

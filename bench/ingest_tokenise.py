"""A corpus from file to packed training blocks: speed and peak memory of each stage as the corpus grows.

    python bench/ingest_tokenise.py [--sizes 50 500] [--num-proc N]

For each size (MB of UTF-8 text) it writes a .txt corpus into a temporary folder, one document per line,
made of WikiText-2 and the Gutenberg books repeated with every pass numbered, as `ingest_speed.py` does
(the documents stay distinct). Then each stage runs in a fresh Python process, as the app runs it:

  ingest     `ingest_corpus` with the arguments `Studio.upload_corpus` passes it (txt_mode "lines")
  tokenizer  the held-out split and the WordPiece tokenizer trained on the training documents
             (`held_out_split` + `corpus_tokenizer`, PretrainConfig's defaults: 5% held out, 8,000 tokens)
  pack       tokenising and packing both splits into blocks of 128 tokens (`packed_blocks`, with the number
             of processes the app chooses for the corpus's size, or `--num-proc`)
  pack again the same call once more: a cache hit, which must not tokenise anything

Per stage it prints seconds (of the stage's own call, without the imports), MB/s of input text, the number
of packing processes, and the peak memory of the stage's whole process tree (the stage process and its
`num_proc` workers), sampled every 50 ms from /proc/PID/smaps_rollup: PSS summed over the tree (a page shared
by a forked worker and its parent counts once, not once per process, as a sum of RSS would count it) and its
anonymous part (PSS less the file-backed pages: the memory-mapped Arrow files, which the kernel can drop at
any time, and the shared libraries, whose share also depends on what else runs on the machine): read the
anonymous column for what the stage holds. It also prints `ru_maxrss` of the stage process and of its
largest worker (`RUSAGE_CHILDREN`): per process, and missing nothing between samples. Then the ratio of the
peaks at the largest size over the smallest (goal: about 1, memory flat as the corpus grows; compare sizes
packed by the same number of processes, as each worker adds about 125 MB). Linux only. Everything it writes
is deleted at the end. Prints a table and one JSON line.
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

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ingest_speed import MB, source_lines, write_corpus  # noqa: E402  (the same corpus files)

STAGES = ("ingest", "tokenizer", "pack", "pack again")
MAX_SEQ_LENGTH = 128
SAMPLE_SECONDS = 0.05


# --------------------------------------------------------------------------- the stages, in a child process


def prepared(work: Path):
    """The corpus, its held-out split, the split's fingerprint and the config, as run_pretraining makes them."""
    from pretrain_studio.config import PretrainConfig
    from pretrain_studio.data.corpus import load_corpus
    from pretrain_studio.training.mlm_data import held_out_split, split_fingerprint

    cfg = PretrainConfig(max_seq_length=MAX_SEQ_LENGTH)
    corpus = load_corpus(work / "corpus")
    split = held_out_split(corpus, cfg.eval_fraction, cfg.seed)
    return split, split_fingerprint(corpus, cfg.eval_fraction, cfg.seed), cfg


def run_stage(stage: str, file: Path, work: Path, num_proc: int | None) -> dict:
    """One stage, timed from after its imports; what it reports beside the time."""
    if stage == "ingest":
        from pretrain_studio.data.corpus import ingest_corpus

        started = time.perf_counter()
        # Studio.upload_corpus(files, name, txt_mode="lines", text_column="") -> these arguments.
        stats = ingest_corpus([file], work / "corpus", txt_mode="lines", text_column=None)
        return {"seconds": time.perf_counter() - started, "documents": stats.documents}

    from pretrain_studio.training.mlm_data import corpus_tokenizer, packed_blocks, packing_processes

    started = time.perf_counter()
    split, fingerprint, cfg = prepared(work)
    tokenizer, tokenizer_hit = corpus_tokenizer(split["train"], fingerprint, cfg.vocab_size, cfg.lowercase,
                                                work / "cache")
    if stage == "tokenizer":
        return {"seconds": time.perf_counter() - started, "cache_hit": tokenizer_hit,
                "train_documents": len(split["train"])}

    started = time.perf_counter()  # the pack stages time packed_blocks alone (the tokenizer above is a hit)
    train, held_out, hit = packed_blocks(split, fingerprint, tokenizer, cfg.max_seq_length, work / "cache",
                                         num_proc=num_proc)
    return {"seconds": time.perf_counter() - started, "cache_hit": hit, "blocks": len(train) + len(held_out),
            "processes": num_proc or packing_processes(split["train"])}


def child(stage: str, file: Path, work: Path, num_proc: int | None) -> None:
    """Runs in a fresh process: one stage, then what it cost, as one JSON line."""
    result = run_stage(stage, file, work, num_proc)
    result["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result["workers_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps(result))


# --------------------------------------------------------------------------- the parent: sampling the tree


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(PSS, anonymous PSS) in bytes, summed over `root` and its descendants, from /proc/PID/smaps_rollup.

    PSS counts a page shared by k processes as 1/k in each, so the sum is the tree's real memory, where a sum
    of RSS would count the pages forked workers share with their parent once per process."""
    total = anon = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            rollup = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
        except OSError:  # a worker that just ended
            continue
        fields = dict(line.split(":", 1) for line in rollup.splitlines()[1:])
        total += int(fields["Pss"].split()[0]) * 1024
        anon += int(fields["Pss_Anon"].split()[0]) * 1024
    return total, anon


def measure(stage: str, file: Path, work: Path, num_proc: int | None) -> dict:
    command = [sys.executable, __file__, "--child", stage, str(file), str(work), str(num_proc or 0)]
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: progress bars can't fill it and block
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True)
        root = psutil.Process(proc.pid)
        peak_pss = peak_anon = 0
        while proc.poll() is None:
            pss, anon = tree_memory(root)
            peak_pss, peak_anon = max(peak_pss, pss), max(peak_anon, anon)
            time.sleep(SAMPLE_SECONDS)
        out = proc.stdout.read()
        proc.stdout.close()
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"stage {stage!r} on {file.name} failed:\n{errors.read()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    self_kib, workers_kib = result.pop("self_maxrss_kib"), result.pop("workers_maxrss_kib")
    return {**result, "peak_tree_pss_mb": round(peak_pss / MB, 1), "peak_tree_anon_mb": round(peak_anon / MB, 1),
            "self_maxrss_mb": round(self_kib * 1024 / MB, 1), "workers_maxrss_mb": round(workers_kib * 1024 / MB, 1)}


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]) or None)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500], help="corpus sizes in MB")
    parser.add_argument("--num-proc", type=int, default=None,
                        help="packing processes (default: what the app chooses for the corpus's size)")
    args = parser.parse_args()

    lines = source_lines()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-tokenise-"))
    results: dict[str, dict] = {}
    try:
        for size in sorted(args.sizes):
            file, work = tmp / f"corpus-{size}mb.txt", tmp / f"work-{size}mb"
            work.mkdir()
            nbytes = write_corpus(file, size, "txt", lines)
            results[f"{size}MB"] = by_stage = {}
            for stage in STAGES:
                run = measure(stage, file, work, args.num_proc)
                run["input_mb"] = round(nbytes / MB, 1)
                run["mb_per_second"] = round(nbytes / MB / max(run["seconds"], 1e-9), 2)
                run["seconds"] = round(run["seconds"], 2)
                by_stage[stage] = run
            if not by_stage["pack again"]["cache_hit"] or by_stage["pack"]["cache_hit"]:
                raise SystemExit(f"{size} MB: the second packing was not a cache hit, or the first was")
            shutil.rmtree(work)
            file.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(sorted(args.sizes), results)


def report(sizes: list[int], results: dict[str, dict]) -> None:
    print(f"{'size':>6} {'stage':10} {'seconds':>8} {'MB/s':>8} {'procs':>5} {'tree PSS MB':>11} "
          f"{'tree anon MB':>12} {'maxrss MB':>9} {'worker MB':>9}")
    for label, by_stage in results.items():
        for stage, r in by_stage.items():
            print(f"{label:>6} {stage:10} {r['seconds']:>8.2f} {r['mb_per_second']:>8.1f} {r.get('processes', 1):>5} "
                  f"{r['peak_tree_pss_mb']:>11.1f} {r['peak_tree_anon_mb']:>12.1f} {r['self_maxrss_mb']:>9.1f} "
                  f"{r['workers_maxrss_mb']:>9.1f}")
    first, last = list(results.values())[0], list(results.values())[-1]
    ratios = {stage: {"tree_pss": round(last[stage]["peak_tree_pss_mb"] / first[stage]["peak_tree_pss_mb"], 3),
                      "tree_anon": round(last[stage]["peak_tree_anon_mb"] / first[stage]["peak_tree_anon_mb"], 3)}
              for stage in STAGES}
    labels = list(results)
    for stage, ratio in ratios.items():
        print(f"{stage:10} peak {labels[-1]} / {labels[0]}: tree PSS {ratio['tree_pss']:.2f}, "
              f"anonymous {ratio['tree_anon']:.2f} (goal: about 1)")
    print(json.dumps({"sizes_mb": sizes, "results": results, "peak_ratio_largest_smallest": ratios,
                      "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()

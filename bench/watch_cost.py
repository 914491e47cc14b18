"""What a browser tab watching a run costs that run, measured in alternating windows of one long run.

    python bench/watch_cost.py [--preset tiny] [--rounds 8] [--window 12] [--data PATH]

`bench/pretrain_throughput.py` runs the CLI and then the app one after the other; on a shared machine
whose speed swings by a third from minute to minute, that comparison is mostly noise. Here one pretraining
run is launched through the running app's API and a Chromium tab alternates between watching it on
Runs → Live and showing `about:blank`, `--rounds` times, `--window` seconds each after a few seconds to
settle (loading the page is a one-off cost). Each round compares the run's own `tokens_per_second` rows
logged while watched with those logged just after, while not watched: the machine's drift hits both
halves of a round alike. It also reports the share of a core Chromium used while watching (psutil CPU
times). The app without a tab runs at the CLI's speed (`pretrain_throughput.py --no-browser`: 0.99).
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import CHROMIUM, require_module  # noqa: E402
from endless_run import WIKITEXT, EndlessRun, require_shared_data  # noqa: E402

SETTLE_SECONDS = 5.0


def cpu_seconds(processes) -> float:
    import psutil

    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass  # a renderer that ended during the window
    return total


def chromium_processes() -> list:
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--window", type=float, default=12.0, help="seconds measured per half round")
    parser.add_argument("--data", type=Path, default=None,
                        help="corpus file (default: wikitext2_raw/wiki.test.raw in the shared data folder)")
    args = parser.parse_args()
    args.data = args.data or require_shared_data(*WIKITEXT)

    sync_playwright = require_module("playwright.sync_api", "pip install -r requirements-dev.txt").sync_playwright

    run = EndlessRun(args.data, args.preset, prefix="bench-watch-")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    rounds = []
    try:
        def window(watched: bool) -> tuple[float, float]:
            if watched:  # the page opens on the run that is training; Runs shows its Live sub-tab
                page.goto(run.server.url)
                page.get_by_role("tab", name="Runs").click()
            else:
                page.goto("about:blank")
            time.sleep(SETTLE_SECONDS)
            processes = chromium_processes()
            last_id, before, start = run.last_id(), cpu_seconds(processes), time.time()
            time.sleep(args.window)
            core = (cpu_seconds(processes) - before) / (time.time() - start)
            return run.speed_since(last_id), core

        for _ in range(args.rounds):
            (watched, core), (unwatched, _) = window(True), window(False)
            rounds.append({"watched": round(watched), "unwatched": round(unwatched),
                           "ratio": round(watched / unwatched, 3), "chromium_core": round(core, 3)})
    finally:
        browser.close()
        playwright.stop()
        run.stop()

    print(f"{args.preset} preset, {args.rounds} rounds of {args.window:.0f} s watched + {args.window:.0f} s not")
    print(f"{'round':>5} {'watched tok/s':>14} {'unwatched tok/s':>16} {'ratio':>6} {'chromium core':>14}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:>5} {r['watched']:>14,} {r['unwatched']:>16,} {r['ratio']:>6.2f} {r['chromium_core']:>14.2f}")
    ratio = statistics.median(r["ratio"] for r in rounds)
    core = statistics.median(r["chromium_core"] for r in rounds)
    print(f"median watched/unwatched {ratio:.3f}; Chromium {core:.2f} of a core while watching")
    print(json.dumps({"preset": args.preset, "rounds": rounds, "watched_vs_unwatched": ratio,
                      "chromium_core_watching": core}))


if __name__ == "__main__":
    main()

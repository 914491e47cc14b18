"""Time from clicking "Launch pretraining" to the first point on the live plot, in a real browser.

    python bench/launch_to_first_point.py [--repeats 3] [--model-size tiny]

Starts `python app.py` on a fresh workspace (the embedded sample corpus), opens
the app in Debian's Chromium, clicks Launch with the form's defaults and
measures until the Runs tab's loss chart shows a point (the step-0
evaluation, drawn by the 1-second poll). Each run is then stopped and Launch
clicked again in the same app: that second launch is timed to its first metric
row in the registry (the training process's fork server has warmed up by then;
the first launch after the app starts may wait for it). Prints the times and
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import (CHROMIUM, CHROMIUM_ARGS, LOSS_POINTS_JS, PLAYWRIGHT, AppServer,  # noqa: E402
                           require_module, wait_for)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-size", default="tiny")
    args = parser.parse_args()
    sync_playwright = require_module("playwright.sync_api", PLAYWRIGHT).sync_playwright

    from pretrain_studio.registry import Registry

    times, again = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        for _ in range(args.repeats):
            # A fresh app and workspace each time, so no earlier run's points can be mistaken for the new one's.
            server = AppServer(Path(tempfile.mkdtemp(prefix="bench-launch-")) / "workspace").start()
            try:
                page.goto(server.url)
                page.get_by_role("tab", name="Pretrain").click()
                size = page.get_by_role("combobox", name="Model size (from scratch)", exact=True)
                size.click()
                page.get_by_role("option").filter(has_text=f"{args.model_size} (").click()
                started = time.perf_counter()
                page.get_by_role("button", name="Launch pretraining").click()
                page.wait_for_function(f"({LOSS_POINTS_JS})() > 0", timeout=600_000)
                times.append(time.perf_counter() - started)
                registry = Registry(server.workspace / "studio.db")
                run_id = registry.list_runs()[0]["id"]
                registry.request_stop(run_id)
                wait_for(lambda: registry.get_run(run_id)["status"] not in ("queued", "running"), timeout=600)
                page.get_by_role("tab", name="Pretrain").click()  # a launch shows the Runs tab
                started = time.perf_counter()
                page.get_by_role("button", name="Launch pretraining").click()
                wait_for(lambda: len(registry.list_runs()) == 2 and registry.metrics_since(registry.list_runs()[0]["id"]),
                         timeout=600, interval=0.05)
                again.append(time.perf_counter() - started)
                second = registry.list_runs()[0]["id"]
                registry.request_stop(second)
                wait_for(lambda: registry.get_run(second)["status"] not in ("queued", "running"), timeout=600)
            finally:
                server.stop()
        browser.close()
    print("launch -> first plot point (s): " + ", ".join(f"{t:.2f}" for t in times))
    print("second launch in the same app -> first metric row (s): " + ", ".join(f"{t:.2f}" for t in again))
    print(json.dumps({"model_size": args.model_size, "seconds": [round(t, 2) for t in times],
                      "median_seconds": round(statistics.median(times), 2),
                      "second_launch_seconds": [round(t, 2) for t in again],
                      "second_launch_median_seconds": round(statistics.median(again), 2)}))


if __name__ == "__main__":
    main()

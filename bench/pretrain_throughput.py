"""Pretraining throughput from the CLI and from the app, same settings, same machine, one process tree.

    python bench/pretrain_throughput.py [--presets tiny mini] [--steps 60] [--data PATH] [--no-browser]

For each preset it runs `pretrain-studio pretrain` in the foreground, then the
same config launched through the running app's API while (unless
--no-browser) a Chromium tab watches it on Runs → Live, as a user would.
Tokens per second are the run's own `tokens_per_second` metric (every token
of a packed block is a real token), median over the logged intervals; in the
app, over the intervals logged from `SETTLE_SECONDS` after the tab opened the
run (loading the page is a one-off cost; the question is what watching costs).
It also measures, in the app, the time from the launch request to the first
metric row (the first point on the plot). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_support import REPO, AppServer, require_shared_data, wait_for  # noqa: E402

from pretrain_studio.registry import Registry  # noqa: E402

DEFAULT_DATA = ("wikitext2_raw", "wiki.test.raw")  # in the shared data folder
SETTLE_SECONDS = 5.0


def settings(preset: str, steps: int) -> dict:
    return {"model_size": preset, "vocab_size": 8000, "max_steps": steps, "batch_size": 16, "max_seq_length": 128,
            "logging_steps": 10, "eval_steps": 10_000, "save_steps": 10_000, "seed": 0}


def median_speed(registry: Registry, run_id: str, since: float = 0.0) -> float:
    speeds = [m["value"] for m in registry.metrics_since(run_id)
              if m["name"] == "tokens_per_second" and m["time"] >= since]
    return statistics.median(speeds[1:] or speeds)  # the first interval includes start-up


def cli_run(workspace: Path, data: Path, cfg: dict) -> float:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in cfg.items()]
    subprocess.run([sys.executable, "-m", "pretrain_studio", "pretrain", "--corpus", str(data), *flags,
                    "--workspace", str(workspace)], cwd=REPO, check=True, capture_output=True)
    registry = Registry(workspace / "studio.db")
    return median_speed(registry, registry.list_runs()[0]["id"])


def app_run(server: AppServer, corpus_id: str, cfg: dict, browser_page) -> tuple[float, float]:
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    registry = Registry(server.workspace / "studio.db")
    if browser_page is not None:
        browser_page.goto(server.url)
        browser_page.get_by_role("tab", name="Runs").click()
    started = time.time()
    run_id = client.predict({**cfg, "corpus_id": corpus_id}, api_name="/start_pretraining")["run_id"]
    wait_for(lambda: registry.metrics_since(run_id), timeout=600, interval=0.05, message="first metric row")
    first_point = time.time() - started
    if browser_page is not None:  # a tab watching this very run, polling once a second
        browser_page.reload()
        browser_page.get_by_role("tab", name="Runs").click()
        browser_page.get_by_label("Run").click()
        browser_page.get_by_role("option").first.click()
    watched_from = time.time() + SETTLE_SECONDS
    wait_for(lambda: registry.get_run(run_id)["status"] not in ("queued", "running"), timeout=3600, message="run")
    return median_speed(registry, run_id, since=watched_from), first_point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "mini"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--data", type=Path, default=None,
                        help="corpus file (default: wikitext2_raw/wiki.test.raw in the shared data folder)")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    args.data = args.data or require_shared_data(*DEFAULT_DATA)

    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    data = tmp / "corpus.txt"
    data.write_bytes(args.data.read_bytes())
    server = AppServer(tmp / "app-workspace").start()
    playwright = browser = page = None
    if not args.no_browser and Path("/usr/bin/chromium").exists():
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page()
    results = {}
    try:
        from gradio_client import Client, handle_file

        corpus_id = Client(server.url, verbose=False).predict([handle_file(str(data))], "bench",
                                                              api_name="/upload_corpus")["corpus_id"]
        for preset in args.presets:
            cfg = settings(preset, args.steps)
            cli_speed = cli_run(tmp / f"cli-{preset}", data, cfg)
            app_speed, first_point = app_run(server, corpus_id, cfg, page)
            results[preset] = {"cli_tokens_per_second": round(cli_speed), "app_tokens_per_second": round(app_speed),
                               "app_vs_cli": round(app_speed / cli_speed, 3),
                               "launch_to_first_point_s": round(first_point, 2)}
    finally:
        if browser:
            browser.close()
            playwright.stop()
        server.stop()

    print(f"{'preset':8} {'CLI tok/s':>10} {'app tok/s':>10} {'app/CLI':>8} {'launch->1st point':>18}")
    for preset, r in results.items():
        print(f"{preset:8} {r['cli_tokens_per_second']:>10,} {r['app_tokens_per_second']:>10,} "
              f"{r['app_vs_cli']:>8.2f} {r['launch_to_first_point_s']:>17.1f}s")
    print(json.dumps({"data": str(args.data), "steps": args.steps, "browser_polling": page is not None,
                      "results": results}))


if __name__ == "__main__":
    main()

"""How fast the experiment-management screens draw with a realistic history: 200 runs, 5 long ones.

    .venv/bin/python bench/runs_ui_render.py [--repeats 3] [--runs 200] [--long-runs 5] [--steps 2000]

Builds a workspace without training anything: 200 runs are written straight into the registry
(`Registry.create_run` + `add_metrics`) with realistic curves (pretraining: train and eval loss,
perplexity, masked accuracy, learning rate; fine-tuning: eval accuracy and macro-F1), a mix of
statuses, tags, and fine-tunes whose parent is a pretraining run; 5 of them have 2,000 logged
steps of train_loss / eval_loss / learning_rate. Then starts `python app.py` on it (the tests'
`AppServer`), opens Debian's Chromium and measures, each `--repeats` times on a fresh page:

(a) table: from clicking "All runs" (in Runs, once its Live view has drawn) to the runs table showing
    all 200 rows;
(b) compare: from choosing the last of the 5 long runs in Compare (metric train_loss) to the figure
    drawn with 5 traces, and from ticking "Log scale" to the figure drawn again (a full redraw).

Prints the medians and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

STATUSES = ["completed"] * 14 + ["stopped", "failed", "cancelled", "interrupted"]
UI_TIMEOUT_MS = 60_000


def pretrain_curve(steps: int, every: int, rng: random.Random, lr: float) -> list[tuple[int, dict]]:
    """(step, {metric: value}) rows shaped like a real MLM run: loss falls from ~ln(vocab) and flattens."""
    start, floor, speed = 9.0 + rng.random(), 3.0 + 2 * rng.random(), 150 + 400 * rng.random()
    rows = []
    for step in range(0, steps + 1, every):
        loss = floor + (start - floor) * math.exp(-step / speed) + rng.gauss(0, 0.05)
        values = {"train_loss": loss + rng.gauss(0, 0.15), "learning_rate": lr * max(0.0, 1 - step / steps),
                  "eval_loss": loss + 0.1}
        if step % (every * 5) == 0:  # eval a fifth as often as logging, as runs do
            values.update(perplexity=math.exp(loss + 0.1), eval_accuracy=max(0.0, 0.6 - loss / 20))
        rows.append((step, values))
    return rows


def finetune_curve(steps: int, every: int, rng: random.Random, lr: float) -> list[tuple[int, dict]]:
    top = 0.7 + 0.25 * rng.random()
    rows = []
    for step in range(0, steps + 1, every):
        acc = 0.5 + (top - 0.5) * (1 - math.exp(-step / 60)) + rng.gauss(0, 0.01)
        rows.append((step, {"train_loss": 0.7 * math.exp(-step / 80) + 0.2, "learning_rate": lr,
                            "eval_loss": 0.75 - acc / 2, "eval_accuracy": acc, "eval_f1": acc - 0.02}))
    return rows


def unsynced(registry):
    """The same registry, without an fsync per commit: seeding 16,000 metric steps takes seconds, not minutes.
    (The app that is measured opens the database normally.)"""
    from contextlib import contextmanager

    from pretrain_studio.registry import Registry

    class Unsynced(Registry):
        @contextmanager
        def _connect(self):
            with super()._connect() as db:
                db.execute("PRAGMA synchronous=OFF")
                yield db

    return Unsynced(registry.db_path)


def seed_workspace(root: Path, runs: int = 200, long_runs: int = 5, steps: int = 2000) -> list[str]:
    """A workspace with `runs` finished runs in the registry; returns the ids of the `long_runs` long ones."""
    import datasets

    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    studio = Studio(root, start_worker=False)  # registers the sample corpus and labelled dataset
    registry = unsynced(studio.registry)
    corpus = registry.list_corpora()[0]["id"]
    dataset = registry.list_datasets()[0]["id"]
    rng = random.Random(7)
    now = time.time()
    pretrain_ids, long_ids = [], []
    for i in range(runs):
        run_id = f"run-20250101-{i:06d}-{i:06x}"
        finetune = i >= long_runs and i % 3 == 2
        created = now - (runs - i) * 3600
        is_long = i < long_runs
        lr = rng.choice([1e-4, 3e-4, 5e-4, 1e-3])
        if finetune:
            method = rng.choice(["lora", "full", "adalora", "ia3", "adapter", "top_layers"])
            parent = rng.choice(pretrain_ids)
            config = {"kind": "finetune", "dataset_id": dataset, "base_model": parent, "method": method,
                      "learning_rate": lr, "num_epochs": 3.0, "batch_size": 16, "lora_r": rng.choice([4, 8, 16]),
                      "seed": 42}
            max_steps = 120
            registry.create_run(run_id, name=f"{method} fine-tune #{i}", kind="finetune", config=config,
                                corpus_id=None, dataset_id=dataset, parent_id=parent, device="cpu",
                                max_steps=max_steps, status="completed")
            curve = finetune_curve(max_steps, 10, rng, lr)
        else:
            max_steps = steps if is_long else rng.choice([200, 300, 500])
            config = {"kind": "pretrain", "corpus_id": corpus, "model_size": rng.choice(["tiny", "mini"]),
                      "learning_rate": lr, "batch_size": rng.choice([16, 32]), "max_steps": max_steps,
                      "max_seq_length": 128, "seed": rng.randint(1, 5)}
            registry.create_run(run_id, name=f"{config['model_size']} MLM #{i}" + (" (long)" if is_long else ""),
                                kind="pretrain", config=config, corpus_id=corpus, dataset_id=None, parent_id=None,
                                device="cpu", max_steps=max_steps, status="completed")
            # Long runs log every step (2,000 points a metric); the rest every 10 steps.
            curve = pretrain_curve(max_steps, 1 if is_long else 10, rng, lr)
            if is_long:
                curve = [(s, {k: v[k] for k in ("train_loss", "eval_loss", "learning_rate")}) for s, v in curve[1:]]
                long_ids.append(run_id)
            pretrain_ids.append(run_id)
        for step, values in curve:
            registry.add_metrics(run_id, step, values)
        status = "completed" if is_long else rng.choice(STATUSES)
        registry.update_run(run_id, status=status, created_at=created, started_at=created + 5,
                            finished_at=created + 5 + rng.uniform(60, 3000), tags_json=json.dumps(
                                sorted(rng.sample(["baseline", "lr-sweep", "ablation", "keep", "paper"], rng.randint(0, 2)))),
                            error="out of memory" if status == "failed" else None)
        studio.workspace.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        (studio.workspace.run_dir(run_id) / "config.json").write_text(json.dumps(config, indent=2))
    studio.close()
    return long_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--long-runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()

    from bench_support import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, AppServer, require_module

    sync_api = require_module("playwright.sync_api", PLAYWRIGHT)
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

    root = Path(tempfile.mkdtemp(prefix="runs-ui-bench-")) / "workspace"
    began = time.time()
    long_ids = seed_workspace(root, args.runs, args.long_runs, args.steps)
    print(f"seeded {args.runs} runs ({args.long_runs} x {args.steps} steps) in {time.time() - began:.1f}s: {root}")
    server = AppServer(root).start()
    table_times, compare_times, refresh_times = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(UI_TIMEOUT_MS)
                expect.set_options(timeout=UI_TIMEOUT_MS)
                page.goto(server.url)
                expect(page.get_by_role("button", name="Add corpus")).to_be_visible()
                table_times.append(time_table(page, args.runs))
                chosen, refreshed = time_compare(page, long_ids)
                compare_times.append(chosen)
                refresh_times.append(refreshed)
                page.close()
            browser.close()
    finally:
        server.stop()
    result = {"runs": args.runs, "long_runs": args.long_runs, "steps": args.steps,
              "table_seconds": round(statistics.median(table_times), 3),
              "compare_seconds": round(statistics.median(compare_times), 3),
              "compare_redraw_seconds": round(statistics.median(refresh_times), 3),
              "table_all": [round(t, 3) for t in table_times], "compare_all": [round(t, 3) for t in compare_times],
              "compare_redraw_all": [round(t, 3) for t in refresh_times]}
    print(f"All runs table, {args.runs} rows: median {result['table_seconds']:.2f}s {result['table_all']}")
    print(f"Compare, {args.long_runs} runs x {args.steps} steps, from choosing the last run: median "
          f"{result['compare_seconds']:.2f}s {result['compare_all']}")
    print(f"Compare, the same, from ticking Log scale: median {result['compare_redraw_seconds']:.2f}s "
          f"{result['compare_redraw_all']}")
    print(json.dumps(result))


# The runs table is virtualised: aria-rowcount says how many rows it holds (header + runs), and only
# the rows in view are in the DOM; "shown" = the row count is right and the first rows are drawn.
TABLE_SHOWN_JS = """(want) => {
    const grid = [...document.querySelectorAll('[role=grid][aria-label=Runs]')].find(g => g.offsetParent !== null);
    return !!grid && grid.getAttribute('aria-rowcount') === String(want + 1)
        && grid.querySelectorAll('[role=gridcell]').length > 0;
}"""
# The compare chart with `want` traces of train_loss, all drawn as SVG paths (and a log y axis when asked).
COMPARE_DRAWN_JS = """([want, log]) => {
    const gd = [...document.querySelectorAll('.compare-plot .js-plotly-plot')].find(g => g.offsetParent !== null);
    if (!gd || !gd.data || gd.data.length !== want || (gd.data[0] && gd.data[0].__old)) return false;
    if (log && !(gd.layout.yaxis && gd.layout.yaxis.type === 'log')) return false;
    const title = gd.layout.title && (gd.layout.title.text ?? gd.layout.title);
    return String(title).startsWith('train_loss')
        && gd.querySelectorAll('.scatterlayer .trace path.js-line').length === want;
}"""


def time_table(page, runs: int) -> float:
    """Seconds from clicking Runs → All runs to the table holding every run."""
    page.get_by_role("tab", name="Runs", exact=True).click()
    # Let the Live sub-tab (where Runs opens) settle first: its chart loads plotly.js on first show.
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g.offsetParent)")
    page.wait_for_timeout(500)
    tab = page.get_by_role("tab", name="All runs", exact=True)
    start = time.perf_counter()
    tab.click()
    page.wait_for_function(TABLE_SHOWN_JS, arg=runs, timeout=UI_TIMEOUT_MS, polling="raf")
    return time.perf_counter() - start


def time_compare(page, long_ids: list[str]) -> tuple[float, float]:
    """Seconds from choosing the last of the long runs to the chart drawn with all of them, and from
    ticking "Log scale" to the chart drawn again. (Refresh with nothing new changes no data, and Gradio then
    leaves the figure as it is, so a redraw is timed through the log-scale switch.)"""
    from playwright.sync_api import expect

    def combobox(page, label: str):  # the visible dropdown with this label (as in tests/e2e/test_browser.py)
        return page.get_by_role("combobox", name=label, exact=True).filter(visible=True)

    page.get_by_role("tab", name="Compare", exact=True).click()
    metric = combobox(page, "Metric")
    metric.click()
    page.get_by_role("option", name="train_loss", exact=True).click()
    box = combobox(page, "Runs to compare")
    for i, run_id in enumerate(long_ids):
        box.click()
        box.fill(run_id[-13:])  # typing filters the list (it shows 100 choices at a time)
        option = page.get_by_role("option").filter(has_text=run_id)
        expect(option).to_have_count(1)
        start = time.perf_counter()
        option.click()
    page.wait_for_function(COMPARE_DRAWN_JS, arg=[len(long_ids), False], timeout=UI_TIMEOUT_MS, polling="raf")
    chosen = time.perf_counter() - start
    page.keyboard.press("Escape")
    page.evaluate("""() => { const gd = [...document.querySelectorAll('.compare-plot .js-plotly-plot')]
        .find(g => g.offsetParent !== null); gd.data[0].__old = true; }""")
    start = time.perf_counter()
    page.get_by_label("Log scale").check()
    page.wait_for_function(COMPARE_DRAWN_JS, arg=[len(long_ids), True], timeout=UI_TIMEOUT_MS, polling="raf")
    return chosen, time.perf_counter() - start


if __name__ == "__main__":
    main()

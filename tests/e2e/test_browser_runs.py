"""End-to-end browser test of experiment management: the runs table, a run's page, Compare, delete.

Against a real `python app.py` server (the `app_server` fixture, with its own temp workspace), in Chromium:

0. Setup, through the API for speed: a WikiText-2 slice is uploaded and three tiny pretraining runs
   (TINY_RUN, 40 steps) with learning rates 2e-3, 1e-3 and 5e-4 are queued. While they train:
   a. Runs → Queue & sweeps: a sweep over learning_rate (1e-4, 3e-4) with the third run as template
      queues two runs named after it, which the queue table lists behind the others; "Move up" puts
      the second before the first (in the registry's queue order too) and "Cancel" takes both out.
   b. Runs → Live, on the third run: with "Pause live plot" ticked the chart gains no points while
      the run logs them; unticked, it catches up with every logged point.
1. Runs → All runs: the table lists the three runs; typing in Search narrows it to one.
2. Opening a run (clicking its row) shows its saved configuration and its lineage (the corpus, the
   tokenizer trained on it, the run itself); renaming it shows the new name in the table (and the registry);
   "Export as zip" offers the zip for download. "Clone into the launch form" opens the Pretrain tab with the run's learning rate and a "(copy)" name.
3. Compare: two runs, metric eval_loss: the figure holds two traces whose point counts are the
   registry's eval_loss rows of those runs; the settings table shows learning_rate and not batch_size.
4. Zoom persists: after a drag-zoom on the compare chart, more than three 1-second polls later the x
   range is the same and the figure is the same object (not replaced). (The Gradio Plot loads plotly as
   a module, so there is no global `Plotly.relayout`; the zoom is made as a user makes it, by dragging.)
5. Side by side: a text with [MASK] sent to both selected runs gives fill-mask answers for each.
6. Delete: unconfirmed, the app refuses; a run that another run is built on (a registry row made here)
   says so on its page, the engine's refusal is shown with "Delete anyway", and deleting anyway removes
   it from the table and its folder from the workspace.

Browser: Chromium at /usr/bin/chromium (or $CHROMIUM), driven by Playwright (helpers from
test_browser.py). Run it with

    .venv/bin/python -m pytest tests/e2e/test_browser_runs.py -q -x
"""

from __future__ import annotations

import re
import time

import pytest
import test_browser
from conftest import TINY_RUN, wait_for
from test_browser import (
    LOSS_POINTS_JS,
    TRAINING_TIMEOUT_MS,
    choose,
    combobox,
    expect,
    failure_report,
    loss_points,
    open_app,
)

pytestmark = pytest.mark.e2e

page = test_browser.page  # the module-scoped Chromium page fixture (1300x1000, slow-machine timeouts), reused

RATES = {"lr 2e-3": 2e-3, "lr 1e-3": 1e-3, "lr 5e-4": 5e-4}
MASKED_TEXT = "the [MASK] was released in 2010 ."
from pretrain_studio.ui.monitor_tab import POLL_SECONDS  # noqa: E402  (the app's fastest timer: the live monitor)

COMPARE_FIGURE_JS = """() => {
    const gd = [...document.querySelectorAll('.compare-plot .js-plotly-plot')].find(g => g.offsetParent !== null);
    if (!gd || !gd.data) return null;
    return {title: gd.layout.title && (gd.layout.title.text ?? gd.layout.title),
            traces: gd.data.map(t => ({name: t.name, points: t.x.length})),
            range: gd.layout.xaxis && gd.layout.xaxis.range ? Array.from(gd.layout.xaxis.range) : null,
            autorange: gd.layout.xaxis ? gd.layout.xaxis.autorange : null,
            probe: gd.__probe === true && gd.data[0].__probe === true};
}"""
MARK_FIGURE_JS = """() => {
    const gd = [...document.querySelectorAll('.compare-plot .js-plotly-plot')].find(g => g.offsetParent !== null);
    gd.__probe = true; gd.data[0].__probe = true;  // a redraw replaces gd.data; a new plot, gd itself
}"""


def open_subtab(page, name: str) -> None:
    """Runs → <name> (exact names: "All runs" contains "Runs")."""
    runs = page.get_by_role("tab", name="Runs", exact=True)
    if runs.get_attribute("aria-selected") != "true":
        runs.click()
    page.get_by_role("tab", name=name, exact=True).click()
    expect(page.get_by_role("tab", name=name, exact=True, selected=True)).to_be_visible()


def pick_many(page, label: str, texts: list[str]) -> None:
    """Add options to a multiselect dropdown, typing to filter as a user does with a long list."""
    box = combobox(page, label)
    for text in texts:
        box.click()
        box.fill(text)
        option = page.get_by_role("option").filter(has_text=text)
        expect(option).to_have_count(1)
        option.click()
    page.keyboard.press("Escape")


def grid(page, name: str):
    return page.get_by_role("grid", name=name, exact=True)


def name_cell(table, name: str):
    """The table cell in the name column (the first) that reads exactly `name`."""
    return table.get_by_role("gridcell", name=name, exact=True).and_(table.locator("[data-col='0']"))


def data_rows(table):
    return table.get_by_role("row").filter(has=table.page.get_by_role("gridcell"))


def start_runs(client, wikitext_slice) -> dict[str, str]:
    """name -> run id of three tiny pretraining runs, queued."""
    from gradio_client import handle_file

    corpus = client.predict([handle_file(str(wikitext_slice))], "wiki slice", api_name="/upload_corpus")
    return {name: client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "learning_rate": rate, "name": name,
                                  "device": "cpu"}, api_name="/start_pretraining")["run_id"]
            for name, rate in RATES.items()}


def wait_finished(registry, run_id: str) -> dict:
    return wait_for(lambda: (r := registry.get_run(run_id))["status"] not in ("queued", "running") and r,
                    timeout=TRAINING_TIMEOUT_MS / 1000, interval=0.25, message=f"run {run_id} to finish")


def loss_rows(registry, run_id: str) -> int:
    return sum(r["name"] in ("train_loss", "eval_loss", "learning_rate") for r in registry.metrics_since(run_id))


def test_user_manages_and_compares_runs(page, app_server, wikitext_slice, tmp_path):
    with failure_report(page, app_server, tmp_path):
        walk_through(page, app_server, wikitext_slice)


def walk_through(page, app_server, wikitext_slice) -> None:
    from gradio_client import Client

    from pretrain_studio.registry import Registry

    registry = Registry(app_server.workspace / "studio.db")
    client = Client(app_server.url, verbose=False)
    began = time.time()
    ids = start_runs(client, wikitext_slice)
    first, second, third = ids["lr 2e-3"], ids["lr 1e-3"], ids["lr 5e-4"]
    open_app(page, app_server.url)

    # --- 0a. While they train: a sweep, reordered and cancelled in the queue ----------------------
    open_subtab(page, "Queue & sweeps")
    choose(page, "Template run", third)
    expect(combobox(page, "Setting 1")).to_have_value("learning_rate")
    page.get_by_label("Values of setting 1 (comma-separated)").fill("1e-4, 3e-4")
    page.get_by_role("button", name="Queue sweep").click()
    expect(page.get_by_text("Queued 2 run(s):")).to_be_visible()
    sweep = sorted((r for r in registry.list_runs() if any(t.startswith("sweep-") for t in r["tags"])),
                   key=lambda r: r["config"]["learning_rate"])
    assert [(r["name"], r["config"]["learning_rate"], r["status"]) for r in sweep] == [
        ("lr 5e-4 [learning_rate=0.0001]", 1e-4, "queued"), ("lr 5e-4 [learning_rate=0.0003]", 3e-4, "queued")]
    low, high = (r["id"] for r in sweep)
    queue_table = grid(page, "Queue (next to run first)")
    for run_id in (low, high):
        expect(data_rows(queue_table).filter(has_text=run_id)).to_have_count(1)
    expect(data_rows(queue_table).last).to_contain_text(high)  # queued last, runs last
    choose(page, "Queued run", high)
    page.get_by_role("button", name="Move up", exact=True).click()
    expect(data_rows(queue_table).last).to_contain_text(low)
    order = [r["id"] for r in registry.queue()]
    assert order.index(high) < order.index(low), order
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(data_rows(queue_table).filter(has_text=high)).to_have_count(0)
    choose(page, "Queued run", low)
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(data_rows(queue_table).filter(has_text=low)).to_have_count(0)
    assert registry.get_run(low)["status"] == registry.get_run(high)["status"] == "cancelled"

    # --- 0b. Live monitor: a paused plot gains no points; un-paused, it catches up -----------------
    open_subtab(page, "Live")
    choose(page, "Run", third)
    pause = page.get_by_label("Pause live plot")
    pause.check()
    page.wait_for_timeout(POLL_SECONDS * 1500)  # a poll that may have been in flight when pausing
    drawn = loss_points(page)
    wait_finished(registry, third)
    logged = loss_rows(registry, third)
    assert logged > drawn, f"the run finished before the plot was paused ({logged} rows, {drawn} drawn)"
    page.wait_for_timeout(POLL_SECONDS * 3000)
    assert loss_points(page) == drawn, "the paused plot was redrawn"
    pause.uncheck()
    page.wait_for_function(f"({LOSS_POINTS_JS})() === {logged}")
    for run_id in ids.values():
        assert wait_finished(registry, run_id)["status"] == "completed", registry.get_run(run_id)
    trained = time.time()

    # --- 1. All runs: the table lists the three (and the cancelled sweep); Search narrows it -------
    open_subtab(page, "All runs")
    table = grid(page, "Runs")
    combobox(page, "Status").click()
    page.get_by_role("option", name="completed", exact=True).click()
    expect(table).to_have_attribute("aria-rowcount", "4")  # the header and three runs
    for name in RATES:
        expect(name_cell(table, name)).to_be_visible()
    expect(page.get_by_text("3 of 5 runs", exact=True)).to_be_visible()
    search = page.get_by_label("Search")
    search.fill("lr 1e-3")
    expect(table).to_have_attribute("aria-rowcount", "2")
    expect(page.get_by_text("1 of 5 runs", exact=True)).to_be_visible()
    expect(data_rows(table)).to_have_count(1)
    expect(data_rows(table).first).to_contain_text(second)
    search.fill("")
    expect(table).to_have_attribute("aria-rowcount", "4")

    # --- 2. A run's page: config and lineage; rename; clone --------------------------------------
    name_cell(table, "lr 2e-3").click()
    expect(combobox(page, "Open run")).to_have_value(re.compile(first))
    expect(page.get_by_role("heading", name="lr 2e-3", exact=True)).to_be_visible()
    lineage = page.locator("li").filter(has_text="corpus wiki slice").filter(visible=True).first
    expect(lineage).to_contain_text("tokenizer trained on the corpus")
    expect(lineage).to_contain_text(f"this run: pretraining lr 2e-3 {first} · completed")
    page.get_by_text("Configuration and command").click()
    config = page.locator(".cm-line").filter(has_text='"learning_rate": 0.002').filter(visible=True)
    expect(config).to_have_count(1)
    expect(page.locator(".cm-line").filter(has_text=f'"corpus_id": "{registry.get_run(first)["corpus_id"]}"')
           .filter(visible=True)).to_have_count(1)

    name_box = page.get_by_label("Name", exact=True).filter(visible=True)
    expect(name_box).to_have_value("lr 2e-3")
    name_box.fill("fast learner")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(name_cell(table, "fast learner")).to_be_visible()
    expect(name_cell(table, "lr 2e-3")).to_have_count(0)
    assert registry.get_run(first)["name"] == "fast learner"

    page.get_by_role("button", name="Export as zip").click()
    download = page.locator(f'a[download="{first}.zip"]').filter(visible=True)  # the File box's download link
    expect(download).to_have_count(1, timeout=60_000)
    assert list((app_server.workspace / "exports").glob("*.zip")), "no zip in the workspace's exports folder"

    page.get_by_role("button", name="Clone into the launch form").click()
    expect(page.get_by_role("tab", name="Pretrain", selected=True)).to_be_visible()
    expect(page.get_by_label("Learning rate", exact=True).filter(visible=True)).to_have_value("0.002")
    expect(page.get_by_label("Max steps", exact=True).filter(visible=True)).to_have_value(str(TINY_RUN["max_steps"]))
    expect(page.get_by_label("Run name").filter(visible=True)).to_have_value("fast learner (copy)")

    # --- 3. Compare two runs on eval_loss ------------------------------------------------------
    open_subtab(page, "Compare")
    expect(page.get_by_text("never by a timer")).to_be_visible()
    expect(page.get_by_label("Live refresh")).not_to_be_checked()
    pick_many(page, "Runs to compare", [first, second])
    expect(combobox(page, "Metric")).to_have_value("eval_loss")
    # One curve per run, and beside each its dashed no-context line (a pretraining run's info["no_context_loss"]).
    page.wait_for_function(f"(() => {{ const f = ({COMPARE_FIGURE_JS})(); return f && "
                           "f.traces.filter(t => !t.name.includes('no context')).length === 2; })")
    figure = page.evaluate(COMPARE_FIGURE_JS)
    assert figure["title"] == "eval_loss", figure
    lines = [t for t in figure["traces"] if "no context" in t["name"]]
    assert len(lines) == 2 and {t["name"].split(" · ")[0][-7:-1] for t in lines} == {first[-6:], second[-6:]}, lines
    figure["traces"] = [t for t in figure["traces"] if "no context" not in t["name"]]
    for run_id in (first, second):
        rows = [r for r in registry.metrics_since(run_id) if r["name"] == "eval_loss"]
        trace = next(t for t in figure["traces"] if t["name"].endswith(f"({run_id[-6:]})"))
        assert trace["points"] == len(rows) > 1, (trace, len(rows))
    settings = grid(page, "Settings that differ")
    expect(settings.get_by_role("gridcell", name="learning_rate", exact=True)).to_be_visible()
    expect(settings.get_by_role("gridcell", name="batch_size", exact=True)).to_have_count(0)
    expect(data_rows(settings)).to_have_count(1)  # the runs differ only in learning rate (and name)

    # --- 4. Zoom persists across polls ---------------------------------------------------------
    drag = page.locator(".compare-plot .nsewdrag").filter(visible=True).first
    box = drag.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_function(f"(() => {{ const f = ({COMPARE_FIGURE_JS})(); return f && f.range && "
                           f"f.autorange === false; }})")
    page.evaluate(MARK_FIGURE_JS)
    zoomed = page.evaluate(COMPARE_FIGURE_JS)
    assert zoomed["probe"], zoomed
    page.wait_for_timeout(POLL_SECONDS * 4 * 1000)  # more than three polls of every timer in the app
    after = page.evaluate(COMPARE_FIGURE_JS)
    assert after["probe"], "the compare figure was redrawn by a timer"
    assert after["range"] == zoomed["range"], (zoomed, after)
    live = page.get_by_label("Live refresh")
    live.check()  # opting in to a timer says what it costs
    expect(page.get_by_text("each redraw resets zoom and hidden series")).to_be_visible()
    live.uncheck()
    expect(page.get_by_text("never by a timer")).to_be_visible()

    # --- 5. One text, both models, side by side ------------------------------------------------
    page.get_by_label("Text for every selected model").fill(MASKED_TEXT)
    page.get_by_role("button", name="Ask all selected models").click()
    answers = grid(page, "Answers side by side")
    expect(data_rows(answers)).to_have_count(2, timeout=60_000)
    for i, run_id in enumerate((first, second)):
        row = data_rows(answers).filter(has_text=run_id[-6:])
        expect(row).to_have_count(1)
        cells = row.get_by_role("gridcell")
        expect(cells.nth(1)).to_have_text("fill-mask")
        assert cells.nth(2).inner_text().strip() not in ("", "—"), row.inner_text()
        assert re.search(r"\d\.\d{3}", cells.nth(3).inner_text()), row.inner_text()

    # --- 6. Delete: confirmation, dependents, delete anyway ------------------------------------
    child = "run-20000101-000000-abcdef"  # a fine-tune built on the third run, recorded without training
    registry.create_run(child, name="child of lr 5e-4", kind="finetune", parent_id=third, device="cpu",
                        config={"kind": "finetune", "method": "lora", "base_model": third}, corpus_id=None,
                        max_steps=0, status="completed")
    open_subtab(page, "All runs")
    expect(table).to_have_attribute("aria-rowcount", "5")
    name_cell(table, "lr 5e-4").click()
    expect(page.get_by_role("heading", name="lr 5e-4", exact=True)).to_be_visible()
    expect(page.get_by_text("1 run(s) are built on this one")).to_be_visible()
    leaf = page.locator("li:not(:has(li))").filter(has_text="fine-tune (lora) child of lr 5e-4")
    expect(leaf.filter(visible=True)).to_have_count(1)
    page.get_by_role("button", name="Delete run").click()
    toast = page.get_by_test_id("toast-body").filter(has_text="Yes, delete this run")
    expect(toast).to_be_visible()
    toast.get_by_role("button", name="Close", exact=True).click()
    assert registry.get_run(third) is not None
    page.get_by_label("Yes, delete this run and its files").check()
    page.get_by_role("button", name="Delete run").click()
    expect(page.get_by_text(re.compile(rf"run {third} is the base of 1 other run"))).to_be_visible()
    assert registry.get_run(third) is not None and (app_server.workspace / "runs" / third).is_dir()
    page.get_by_role("button", name="Delete anyway").click()
    expect(page.get_by_text(f"Deleted {third}; 1 run(s) built on it keep their files.")).to_be_visible()
    expect(table).to_have_attribute("aria-rowcount", "4")
    expect(name_cell(table, "lr 5e-4")).to_have_count(0)
    assert registry.get_run(third) is None
    assert not (app_server.workspace / "runs" / third).exists()
    assert (app_server.workspace / "runs" / first).is_dir()

    assert page.js_errors == [], page.js_errors
    print(f"setup (3 runs trained) {trained - began:.1f}s, browser part {time.time() - trained:.1f}s")

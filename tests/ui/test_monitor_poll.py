"""The Live view's poll: a long run is plotted whole (first to latest step) with a bounded number of points.

No timings here: bench/poll_cost.py measures what a poll costs at step 50 and at step 50,000.
"""

import math
import random
import sqlite3

import gradio as gr
import pytest

from pretrain_studio.ui.monitor_tab import PLOT_SECONDS, build_monitor_tab
from pretrain_studio.ui.plots import LIVE_POINTS, LiveSeries

RUN = "run-long"


def test_live_series_keeps_all_points_below_the_limit():
    series = LiveSeries(limit=100)
    for step in range(0, 500, 10):
        series.append(step, step / 7)
    assert series.points() == [(step, step / 7) for step in range(0, 500, 10)]


def test_live_series_stays_bounded_and_keeps_first_latest_and_extremes():
    rng = random.Random(3)
    series, raw = LiveSeries(limit=100), []
    for i in range(50_000):
        value = 1 + rng.random()
        if i == 31_234:
            value = 9.0  # a loss spike
        if i == 40_000:
            value = 0.1  # and a dip
        series.append(i * 10, value)
        raw.append((i * 10, value))
        if i % 1_000 == 0:
            points = series.points()
            assert len(points) <= 100
            assert points[0] == raw[0] and points[-1] == raw[-1]
    points = series.points()
    steps = [s for s, _ in points]
    assert len(points) <= 100 and steps == sorted(set(steps))
    assert points[0] == raw[0] and points[-1] == raw[-1]
    assert (312_340, 9.0) in points and (400_000, 0.1) in points
    assert len(points) > 50  # merged buckets leave at least half the budget


@pytest.fixture
def monitor(tmp_path):
    """(studio, the function the Live view's gr.Timer calls) on a fresh workspace, no worker."""
    from pretrain_studio.studio import Studio

    studio = Studio(tmp_path / "workspace", start_worker=False)
    with gr.Blocks() as demo:
        build_monitor_tab(studio)
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer))
    poll = next(f.fn for f in demo.fns.values() if (timer._id, "tick") in f.targets)
    studio.registry.create_run(RUN, name="long MLM", kind="pretrain", config={}, corpus_id=None, parent_id=None,
                               device="cpu", max_steps=100_000, status="running")
    yield studio, poll
    studio.close()


def write_steps(studio, first: int, last: int, eval_steps: int = 500) -> None:
    """Metric rows as a pretraining run logs them (every 10 steps; eval every `eval_steps`), in one transaction."""
    rows = []
    for step in range(first, last + 1):
        if step % 10 == 0 and step:
            values = {"train_loss": 3 + 6 * math.exp(-step / 3000), "grad_norm": 1.0,
                      "learning_rate": 5e-4 * (1 - step / 100_000), "tokens_per_second": 20_000.0}
            rows += [(RUN, step, name, value, 0.0) for name, value in values.items()]
        if step % eval_steps == 0:
            rows += [(RUN, step, name, value, 0.0) for name, value in
                     (("eval_loss", 3.1), ("eval_accuracy", 0.4), ("perplexity", 22.0))]
    with sqlite3.connect(studio.registry.db_path) as db:
        db.executemany("INSERT INTO metrics (run_id, step, name, value, time) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE runs SET step = ? WHERE id = ?", (last, RUN))


def traces(figure) -> dict[str, tuple[list, list]]:
    return {t.name: (list(t.x), list(t.y)) for t in figure.data}


def test_poll_at_step_50000_plots_the_whole_run_within_the_bound(monitor):
    studio, poll = monitor
    write_steps(studio, 0, 50_000)
    text, figure, _, _, _, _, state, _ = poll(RUN, {"run_id": None, "after_id": 0, "series": {}}, False)
    drawn = traces(figure)
    assert set(drawn) == {"train loss", "eval loss", "learning rate"}
    for x, _ in drawn.values():
        assert len(x) <= LIVE_POINTS
        assert x == sorted(x)
    assert drawn["train loss"][0][0] == 10 and drawn["train loss"][0][-1] == 50_000
    assert drawn["eval loss"][0] == list(range(0, 50_001, 500))  # 101 evaluations: all drawn
    assert all(len(kept.points()) <= LIVE_POINTS for kept in state["series"].values())

    # One more logging step arrives: the next poll reads only it and shows it in the text at once, but
    # the plot waits until PLOT_SECONDS after its last redraw; then its point is the plot's last.
    write_steps(studio, 50_001, 50_010)
    text, figure, _, _, _, _, state, _ = poll(RUN, state, False)
    assert figure == gr.skip() and "step **50010**" in text
    state["drawn_at"] -= PLOT_SECONDS
    _, figure, *_ = poll(RUN, state, False)
    drawn = traces(figure)
    assert drawn["train loss"][0][-1] == 50_010 and len(drawn["train loss"][0]) <= LIVE_POINTS
    assert drawn["train loss"][1][-1] == pytest.approx(3 + 6 * math.exp(-50_010 / 3000))
    assert drawn["learning rate"][0][-1] == 50_010
    assert "train loss 3" in text and "20,000 tokens/s" in text

    # Nothing new: the plot is left alone (a redraw would reset the user's zoom).
    assert poll(RUN, state, False)[1] == gr.skip()


def test_poll_early_in_a_run_plots_every_point(monitor):
    studio, poll = monitor
    write_steps(studio, 0, 50, eval_steps=50)
    _, figure, *_ = poll(RUN, {"run_id": None, "after_id": 0, "series": {}}, False)
    drawn = traces(figure)
    assert drawn["train loss"][0] == [10, 20, 30, 40, 50]
    assert drawn["eval loss"][0] == [0, 50]
    assert drawn["learning rate"][1] == pytest.approx([5e-4 * (1 - s / 100_000) for s in (10, 20, 30, 40, 50)])


def test_the_timer_ticks_only_while_the_run_can_change_and_the_live_tab_is_shown(monitor):
    studio, poll = monitor
    write_steps(studio, 0, 50, eval_steps=50)
    *_, state, timer = poll(RUN, {"run_id": None, "after_id": 0, "series": {}}, False, True)
    assert timer.active is True
    *_, state, timer = poll(RUN, state, False, True)
    assert timer == gr.skip()  # unchanged: nothing is sent for it
    *_, state, timer = poll(RUN, state, False, False)  # another tab was chosen
    assert timer.active is False
    *_, state, timer = poll(RUN, state, False, True)  # and the Live tab again
    assert timer.active is True

    # The run ends right after a redraw: its last points are drawn at once, and the timer stops.
    write_steps(studio, 51, 60)
    studio.registry.update_run(RUN, status="completed", step=60)
    text, figure, *_, state, timer = poll(RUN, state, False, True)
    assert traces(figure)["train loss"][0][-1] == 60 and "**completed**" in text
    assert timer.active is False

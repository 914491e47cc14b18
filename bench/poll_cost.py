"""What one live-monitor poll costs early in a run and late in a long one, and the same for the API's run_metrics.

    .venv/bin/python bench/poll_cost.py [--steps 50 5000 50000] [--repeats 200] [--eval-steps 500]

Builds a temporary workspace with a real SQLite registry (`pretrain_studio.registry.Registry`) holding one
running pretraining run per step count in `--steps`, and writes their metric rows as the Trainer callback
does (`add_metrics`, one call a logging step): train_loss, grad_norm, learning_rate and tokens_per_second
every 10 steps, eval_loss, eval_accuracy and perplexity at step 0 and every `--eval-steps`, plus a log line
each time. Then it measures, `--repeats` times (the step counts interleaved, so a change in the machine's
load hits them all alike), and reports the medians of:

* poll: the function the Runs tab's `gr.Timer` calls (found on the built Blocks by its tick trigger),
  given the `gr.State` that the tab's earlier polls accumulated from step 0, while one new logging step
  arrives (4 rows) and the last redraw is older than `PLOT_SECONDS`, so it reads the new rows and
  redraws the plot;
* poll + send: the same plus Gradio turning the figure into what goes to the browser (`gr.Plot.postprocess`);
* api: the `/run_metrics` endpoint's function as registered by `register_api`, called as a polling client
  does, with `after_id` = the last id it has seen, while one logging step arrives.

After each repeat the new rows are deleted (`delete_metrics_after`) and the state is put back, so every
repeat polls at the same step. Prints a table and one JSON line; the ratios are the largest step count's
medians over the smallest's (the baseline, measured in the same process).
"""

from __future__ import annotations

import argparse
import copy
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
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Seeding without an fsync per commit (the measured calls open the database normally); shared with that bench.
from runs_ui_render import unsynced  # bench/ is on sys.path: it holds this script

LOGGING_STEPS = 10
STATE = 6  # the poll returns (progress, plot, log tail, results, confusion matrix, downstream plot, state, timer)


class Run:
    """A pretraining run's metric stream written the way RegistryCallback writes it (one add_metrics per event)."""

    def __init__(self, run_id: str, registry, log_path: Path, eval_steps: int, max_steps: int):
        self.run_id, self.registry, self.log_path, self.eval_steps = run_id, registry, log_path, eval_steps
        self.max_steps, self.step, self.rng = max_steps, -1, random.Random(0)

    def logging_values(self, step: int) -> dict[str, float]:
        loss = 3.0 + 6.0 * math.exp(-step / 3000) + self.rng.gauss(0, 0.15)
        return {"train_loss": loss, "grad_norm": 1.0 + self.rng.random(),
                "learning_rate": 5e-4 * max(0.0, 1 - step / self.max_steps),
                "tokens_per_second": 20_000 + self.rng.gauss(0, 500)}

    def eval_values(self, step: int) -> dict[str, float]:
        loss = 3.1 + 6.0 * math.exp(-step / 3000)
        return {"eval_loss": loss, "eval_accuracy": max(0.0, 0.6 - loss / 20), "perplexity": math.exp(loss)}

    def write(self, step: int, values: dict[str, float], log) -> None:
        self.registry.add_metrics(self.run_id, step, values)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} step {step}: {shown}\n")

    def advance_to(self, target: int) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            for step in range(self.step + 1, target + 1):
                if step % LOGGING_STEPS == 0 and step:
                    self.write(step, self.logging_values(step), log)
                if step % self.eval_steps == 0:
                    self.write(step, self.eval_values(step), log)
        self.step = target
        self.registry.update_run(self.run_id, step=target)


def endpoints(studio):
    """(the Live tab's timer function, the gr.Plot it draws into, the /run_metrics API function), from real Blocks."""
    import gradio as gr

    from pretrain_studio.ui.api import register_api
    from pretrain_studio.ui.monitor_tab import build_monitor_tab

    with gr.Blocks() as demo:
        build_monitor_tab(studio)
        register_api(studio)
    timers = [b for b in demo.blocks.values() if isinstance(b, gr.Timer)]
    tick = next(f for f in demo.fns.values() if (timers[0]._id, "tick") in f.targets)
    plot = next(b for b in tick.outputs if isinstance(b, gr.Plot))
    api = next(f for f in demo.fns.values() if f.api_name == "run_metrics")
    return tick.fn, plot, api.fn


class Watcher:
    """One run watched by one browser tab (its gr.State) and one API client (its last id)."""

    def __init__(self, run: Run, poll, api):
        self.run, self.poll, self.api = run, poll, api
        # What the tab's earlier polls did: read every row written since the previous poll (here in one
        # call instead of one a second; the state that results is the same).
        self.state = poll(run.run_id, {"run_id": None, "after_id": 0, "series": {}}, False)[STATE]
        self.state["drawn_at"] = -math.inf  # the last redraw was long ago: each sampled poll redraws
        self.last_id = api(run.run_id, 0)[-1]["id"]  # the API client has read everything so far
        self.poll_s, self.send_s, self.api_s, self.points = [], [], [], 0

    def sample(self, plot) -> None:
        """One poll and one API call while one logging step arrives; then the step and the state are undone."""
        run = self.run
        saved = copy.deepcopy(self.state)
        new_step = run.step + LOGGING_STEPS
        run.registry.add_metrics(run.run_id, new_step, run.logging_values(new_step))
        start = time.perf_counter()
        out = self.poll(run.run_id, self.state, False)
        middle = time.perf_counter()
        plot.postprocess(out[1])
        end = time.perf_counter()
        assert not isinstance(out[1], dict), "the poll did not redraw"
        self.poll_s.append(middle - start)
        self.send_s.append(end - start)
        self.points = sum(len(trace.x) for trace in out[1].data)
        self.state = saved
        start = time.perf_counter()
        rows = self.api(run.run_id, self.last_id)
        self.api_s.append(time.perf_counter() - start)
        assert [r["step"] for r in rows] == [new_step] * 4, rows
        run.registry.delete_metrics_after(run.run_id, run.step)

    def result(self) -> dict:
        return {"step": self.run.step, "rows": len(self.run.registry.metrics_since(self.run.run_id)),
                "points": self.points, "poll_ms": median_ms(self.poll_s), "send_ms": median_ms(self.send_s),
                "api_ms": median_ms(self.api_s)}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 5000, 50_000],
                        help="step counts to measure at (ascending)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--eval-steps", type=int, default=500)
    args = parser.parse_args()
    steps = sorted(args.steps)

    import datasets

    from pretrain_studio.studio import Studio

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory(prefix="poll-cost-") as tmp:
        studio = Studio(Path(tmp) / "workspace", start_worker=False)
        poll, plot, api = endpoints(studio)
        watchers = []
        for target in steps:  # one running run per step count, all in the same registry
            run_id = f"run-bench-poll-{target}"
            studio.registry.create_run(run_id, name=f"tiny MLM at step {target}", kind="pretrain", config={},
                                       corpus_id=None, parent_id=None, device="cpu", max_steps=2 * steps[-1],
                                       status="running")
            run_dir = studio.workspace.run_dir(run_id)
            run_dir.mkdir(parents=True, exist_ok=True)
            run = Run(run_id, unsynced(studio.registry), run_dir / "train.log", args.eval_steps, 2 * steps[-1])
            run.advance_to(target)
            watchers.append(Watcher(run, poll, api))
            print(f"wrote {target:,} steps", file=sys.stderr, flush=True)
        for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits every step count
            for watcher in watchers:
                watcher.sample(plot)
        results = [w.result() for w in watchers]
        studio.close()

    print(f"\n{'step':>8} {'metric rows':>12} {'plotted points':>15} {'poll ms':>9} {'poll+send ms':>13} {'api ms':>8}")
    for r in results:
        print(f"{r['step']:>8,} {r['rows']:>12,} {r['points']:>15,} {r['poll_ms']:>9.2f} {r['send_ms']:>13.2f}"
              f" {r['api_ms']:>8.3f}")
    first, last = results[0], results[-1]
    a, b = first["step"], last["step"]
    summary = {"repeats": args.repeats, "eval_steps": args.eval_steps}
    for r in results:
        summary.update({f"poll_ms_at_{r['step']}": round(r["poll_ms"], 3),
                        f"poll_send_ms_at_{r['step']}": round(r["send_ms"], 3),
                        f"api_ms_at_{r['step']}": round(r["api_ms"], 4),
                        f"points_at_{r['step']}": r["points"]})
    summary.update({"ratio": round(last["poll_ms"] / first["poll_ms"], 3),
                    "send_ratio": round(last["send_ms"] / first["send_ms"], 3),
                    "api_ratio": round(last["api_ms"] / first["api_ms"], 3), "ratio_of": f"{b}/{a}"})
    print(f"\nratios (step {b:,} / step {a:,}): poll {summary['ratio']}, poll+send {summary['send_ratio']},"
          f" api {summary['api_ratio']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""API load beside a training run: 10 clients polling run_status and run_metrics every 0.5 s.

    python bench/api_load.py [--clients 10] [--interval 0.5] [--polled-seconds 120] [--rounds 4]
                             [--preset mini] [--client json|http|gradio] [--train-in app|cli]

Starts the real app (`python app.py`, loopback) on a temporary workspace, uploads WikiText-2 and launches
one long pretraining run through the API. Then, `--rounds` times, it lets `--clients` clients (one
thread each) call `/run_status` and then `/run_metrics` (with the last id it has seen) every
`--interval` seconds for `--polled-seconds / --rounds` seconds, and then leaves the run unpolled for as
long. By default the clients GET the JSON polling routes `/studio_api/run_status/<run_id>` and
`/studio_api/run_metrics/<run_id>?after_id=N`; `--client http` speaks plain HTTP on Gradio's
`/gradio_api/call/<endpoint>` route instead (through Gradio's event queue), and `--client gradio` uses
`gradio_client` (which costs the client ~60 ms of CPU a call). Alternating polled
and unpolled windows on one run means the shared machine's drift hits both alike; the figure is the
ratio of the run's speed (steps done per window) polled over the mean of the unpolled windows just before
and after. Reported: requests sent and
answered, errors, p50/p95/max latency, the server's resident memory at the start and the end of
polling (and its peak), and the CPU the clients themselves used (they run on the same 2 cores as the
training). `--train-in cli` trains the same run in a CLI process of its own on the app's workspace, so the
app only serves the polls: the difference shows what sharing one process with the server costs.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from endless_run import WIKITEXT, EndlessRun, require_shared_data  # noqa: E402

SETTLE_SECONDS = 3.0
TOKENS_PER_STEP = 16 * 128  # EndlessRun's batch of packed 128-token blocks


class Poller(threading.Thread):
    """One API client: run_status then run_metrics(after_id) every `interval` seconds while `polling` is set."""

    def __init__(self, url: str, run_id: str, interval: float, polling: threading.Event, done: threading.Event,
                 kind: str = "http"):
        super().__init__(daemon=True)
        self.url, self.run_id, self.interval, self.kind = url, run_id, interval, kind
        if kind == "gradio":
            from gradio_client import Client

            self.client = Client(url, verbose=False)
        self.polling, self.done = polling, done
        self.latencies, self.sent, self.errors, self.last_id = [], 0, [], 0

    def request(self, api_name: str, *args):
        if self.kind == "gradio":
            return self.client.predict(*args, api_name=api_name)
        if self.kind == "json":
            # The polling routes (pretrain_studio/ui/poll_routes.py): one GET, no event queue, no session.
            query = f"?after_id={args[1]}" if len(args) > 1 else ""
            with urllib.request.urlopen(f"{self.url}studio_api{api_name}/{args[0]}{query}", timeout=60) as reply:
                return json.loads(reply.read())
        # Gradio's documented HTTP route (what curl users call): POST the arguments, then read the one event.
        body = json.dumps({"data": list(args)}).encode()
        post = urllib.request.Request(f"{self.url}gradio_api/call{api_name}", data=body,
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=60) as reply:
            event_id = json.loads(reply.read())["event_id"]
        with urllib.request.urlopen(f"{self.url}gradio_api/call{api_name}/{event_id}", timeout=60) as reply:
            stream = reply.read().decode()
        if "event: complete" not in stream:
            raise RuntimeError(stream[:200])
        return json.loads(stream.split("event: complete\ndata: ", 1)[1].strip())[0]

    def call(self, api_name: str, *args):
        self.sent += 1
        start = time.perf_counter()
        try:
            result = self.request(api_name, *args)
        except Exception as exc:  # noqa: BLE001  (an unanswered request is the figure, whatever its kind)
            self.errors.append(f"{api_name}: {exc}")
            return None
        self.latencies.append(time.perf_counter() - start)
        return result

    def run(self) -> None:
        while not self.done.is_set():
            if not self.polling.wait(timeout=0.2):
                continue
            due = time.monotonic() + self.interval
            self.call("/run_status", self.run_id)
            rows = self.call("/run_metrics", self.run_id, self.last_id)
            if rows:
                self.last_id = rows[-1]["id"]
            time.sleep(max(0.0, due - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--polled-seconds", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--train-in", choices=["app", "cli"], default="app",
                        help="the run trains in the app's worker thread, or in a CLI process of its own")
    parser.add_argument("--client", choices=["json", "http", "gradio"], default="json",
                        help="GET on the /studio_api polling routes (default), plain HTTP on Gradio's "
                             "/gradio_api/call route, or gradio_client (~60 ms of client CPU a call)")
    parser.add_argument("--data", type=Path, default=None,
                        help="corpus file (default: wikitext2_raw/wiki.test.raw in the shared data folder)")
    args = parser.parse_args()
    args.data = args.data or require_shared_data(*WIKITEXT)

    import psutil

    run = EndlessRun(args.data, args.preset, prefix="bench-load-", via=args.train_in)
    window = args.polled_seconds / args.rounds
    rounds, rss = [], []
    polling, done = threading.Event(), threading.Event()
    me = psutil.Process()
    try:
        app = psutil.Process(run.server.process.pid)
        pollers = [Poller(run.server.url, run.run_id, args.interval, polling, done, args.client) for _ in range(args.clients)]
        for poller in pollers:
            poller.start()
        client_cpu = 0.0

        def measure(polled: bool) -> dict:
            """One window: tokens per second, and the server's RSS (MB) at its start and end."""
            nonlocal client_cpu
            (polling.set if polled else polling.clear)()
            time.sleep(SETTLE_SECONDS)
            first_step, first_time = run.registry.get_run(run.run_id)["step"], time.time()
            before, end = sum(me.cpu_times()[:2]), time.time() + window
            rss_start = app.memory_info().rss
            while time.time() < end:
                if polled:
                    rss.append(app.memory_info().rss)
                time.sleep(1.0)
            rss_end = app.memory_info().rss
            if polled:
                client_cpu += sum(me.cpu_times()[:2]) - before
            # From the steps done (the registry's step, updated at each logging step) rather than the run's
            # tokens_per_second rows: a window starved of CPU may log no row at all.
            steps = run.registry.get_run(run.run_id)["step"] - first_step
            return {"tokens_per_second": steps * TOKENS_PER_STEP / (time.time() - first_time),
                    "rss_start_mb": rss_start / 2**20, "rss_end_mb": rss_end / 2**20}

        # Unpolled, then (polled, unpolled) per round: each polled window is compared with the mean of the
        # unpolled windows just before and just after it, so a machine (or a run) that speeds up or slows
        # down over the minutes does not count for or against the polling.
        previous = measure(False)
        for _ in range(args.rounds):
            polled, after = measure(True), measure(False)
            unpolled = (previous["tokens_per_second"] + after["tokens_per_second"]) / 2
            rounds.append({"polled": round(polled["tokens_per_second"]), "unpolled": round(unpolled),
                           "ratio": round(polled["tokens_per_second"] / unpolled, 3) if unpolled else float("nan"),
                           # RSS growth while polled and in the unpolled window after: growth that goes on
                           # without polling is the run's own (warm-up, allocator caches), not the server's.
                           "rss_growth_mb_polled": round(polled["rss_end_mb"] - polled["rss_start_mb"]),
                           "rss_growth_mb_unpolled": round(after["rss_end_mb"] - after["rss_start_mb"])})
            previous = after
        done.set()
        polling.clear()
        for poller in pollers:
            poller.join(timeout=30)
    finally:
        done.set()
        run.stop()

    latencies = sorted(x for p in pollers for x in p.latencies)
    sent, errors = sum(p.sent for p in pollers), [e for p in pollers for e in p.errors]
    polled_time = args.rounds * (window + SETTLE_SECONDS)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    ratio = statistics.median(r["ratio"] for r in rounds)
    result = {"clients": args.clients, "client": args.client, "train_in": args.train_in, "interval_s": args.interval, "preset": args.preset,
              "requests_sent": sent, "requests_answered": len(latencies), "errors": len(errors),
              "p50_ms": round(quantile(0.5), 1), "p95_ms": round(quantile(0.95), 1), "max_ms": round(latencies[-1] * 1000, 1),
              "rss_start_mb": round(rss[0] / 2**20), "rss_end_mb": round(rss[-1] / 2**20),
              "rss_peak_mb": round(max(rss) / 2**20), "rss_end_vs_start": round(rss[-1] / rss[0], 3),
              "client_cpu_cores": round(client_cpu / (args.rounds * window), 2),
              "tokens_per_second_polled_vs_unpolled": ratio, "rounds": rounds}
    print(f"{args.clients} clients x (run_status + run_metrics) every {args.interval} s, "
          f"{args.rounds} rounds of {window:.0f} s polled + {window:.0f} s not, {args.preset} run")
    print(f"requests: {sent:,} sent, {len(latencies):,} answered, {len(errors)} errors "
          f"({sent / polled_time:.0f}/s while polling)")
    print(f"latency: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms")
    print(f"server RSS: {result['rss_start_mb']} MB at the start of polling, {result['rss_end_mb']} MB at the end "
          f"({result['rss_end_vs_start']:.2f}x), peak {result['rss_peak_mb']} MB")
    print(f"the clients' own CPU: {result['client_cpu_cores']} of a core")
    print(f"{'round':>5} {'polled tok/s':>13} {'unpolled tok/s':>15} {'ratio':>6} {'RSS +MB polled':>15} "
          f"{'RSS +MB not':>12}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:>5} {r['polled']:>13,} {r['unpolled']:>15,} {r['ratio']:>6.2f} {r['rss_growth_mb_polled']:>15,} "
              f"{r['rss_growth_mb_unpolled']:>12,}")
    print(f"server RSS growth: {sum(r['rss_growth_mb_polled'] for r in rounds):,} MB over the polled windows, "
          f"{sum(r['rss_growth_mb_unpolled'] for r in rounds):,} MB over as long unpolled")
    print(f"median polled/unpolled tokens per second: {ratio:.3f}")
    if errors:
        print("first errors:", *errors[:5], sep="\n  ")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

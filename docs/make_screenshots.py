"""Make the README's fine-tuning screenshot from the quick start itself, with every default.

    python docs/make_screenshots.py [--out docs/screenshot-finetune.png]

Starts the app on a fresh temporary workspace, runs the quick start through the API (pretraining of the sample
corpus, then fine-tuning of the sample "who wrote it?" set on that run, all settings at their defaults), then
opens the finished fine-tuning run in Chromium and saves the page. Prints the run's scores beside its baselines,
so the picture and the README's figures come from the same run. Needs requirements-dev.txt (Playwright) and
Debian's chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot-finetune.png")
    args = parser.parse_args()

    from bench_support import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, AppServer, require_module, wait_for
    from gradio_client import Client

    sync_api = require_module("playwright.sync_api", PLAYWRIGHT)
    server = AppServer(Path(tempfile.mkdtemp(prefix="screenshots-")) / "workspace").start()
    try:
        client = Client(server.url, verbose=False)
        corpus = next(c for c in client.predict(api_name="/list_corpora") if c["name"].startswith("Sample"))
        dataset = next(d for d in client.predict(api_name="/list_datasets") if d["name"].startswith("Sample"))

        def finished(run_id: str) -> dict:
            return wait_for(lambda: (lambda s: s if s["status"] not in ("queued", "running") else None)(
                client.predict(run_id, api_name="/run_status")), timeout=3600, interval=2, message=run_id)

        # As the app's form launches it: every default, the sample set as the downstream check.
        pretrained = client.predict({"corpus_id": corpus["corpus_id"], "downstream_datasets": [dataset["dataset_id"]]},
                                    api_name="/start_pretraining")["run_id"]
        info = finished(pretrained)["info"]
        summary = info["downstream"][dataset["dataset_id"]]
        print(f"{pretrained}: {info['train_seconds']:.0f} s of training, downstream checks {info['downstream_seconds']:.0f} s "
              f"({info['downstream_seconds'] / info['train_seconds']:.0%} of it); eval loss vs no-context line "
              f"{info['no_context_loss']:.2f}; downstream {summary}")
        run_id = client.predict({"dataset_id": dataset["dataset_id"], "base_model": pretrained},
                                api_name="/start_finetuning")["run_id"]
        status = finished(run_id)
        test, base = status["test_metrics"], status["baselines"]
        print(f"{run_id}: test accuracy {test['accuracy']:.3f}, majority {base['majority']['accuracy']:.3f}, "
              f"linear probe {base['linear_probe']['accuracy']:.3f}, verdict {status['info'].get('verdict')}")

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(server.url)
            page.get_by_role("tab", name="Runs").click()
            box = page.get_by_role("combobox", name="Run", exact=True).filter(visible=True)
            box.click()
            page.get_by_role("option").filter(has_text=run_id).click()
            page.get_by_text("fine-tuned (full)").first.wait_for(timeout=60_000)
            time.sleep(1.5)  # let plotly finish drawing
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"wrote {args.out}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

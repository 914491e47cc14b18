"""Make the README's Search screenshot from a study that ran: the bench's (bench/search_efficiency.py) or yours.

    python docs/make_search_screenshot.py WORKSPACE [--study STUDY_ID] [--out docs/screenshot-search.png]

Starts the app on the workspace (the newest study by default), opens Runs → Search in Chromium, chooses the
study, waits for its trials table and Optuna's plots, and saves the page. Needs requirements-dev.txt (Playwright)
and Debian's chromium.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--study", default="", help="the study to show (default: the newest)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot-search.png")
    args = parser.parse_args()

    from bench_support import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, AppServer, require_module
    from gradio_client import Client

    sync_api = require_module("playwright.sync_api", PLAYWRIGHT)
    server = AppServer(args.workspace).start()
    try:
        studies = Client(server.url, verbose=False).predict(api_name="/list_studies")
        study = next(s for s in studies if s["study_id"] == args.study) if args.study else studies[0]
        print(f"{study['study_id']}: {study['name']}, {study['finished_trials']} trials, best {study['best_value']}")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(server.url)
            page.get_by_role("tab", name="Runs", exact=True).click()
            page.get_by_role("tab", name="Search", exact=True).click()
            box = page.get_by_role("combobox", name="Study", exact=True).filter(visible=True)
            box.click()
            page.get_by_role("option").filter(has_text=study["study_id"]).click()
            page.get_by_text(re.compile(r"^Best: trial")).first.wait_for()
            page.locator(".js-plotly-plot").filter(visible=True).nth(2).wait_for()
            page.wait_for_timeout(1500)  # plotly's transitions
            page.get_by_text("### Study").or_(page.get_by_role("heading", name="Study")).first.scroll_into_view_if_needed()
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
        print(f"saved {args.out}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

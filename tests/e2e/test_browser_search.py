"""End-to-end browser test of a hyperparameter search: define a space, launch, watch trials appear, promote.

Against a real `python app.py` server (the `app_server` fixture), in Chromium. Setup through the API: a tiny
base model and a LoRA fine-tuning run on "who wrote it?" to serve as the template. Then, as a user:

1. Runs → Search: choose the template run, "Suggest a space" fills in LoRA's space (learning rate and rank);
   a range with low above high is refused by a toast naming `space.learning_rate.low`, and nothing is queued.
2. A two-trial search over the learning rate starts; the study is chosen, the trials table fills with two
   completed trials, the summary names the best, and Optuna's plots are drawn.
3. "Clone best into its form" opens the Fine-tune form with the best trial's learning rate and a "(copy)" name.
"""

from __future__ import annotations

import json
import re

import pytest
import test_browser
from conftest import AUTHORS, TINY_RUN, wait_for
from test_browser import TRAINING_TIMEOUT_MS, choose, expect, failure_report, open_app
from test_browser_runs import data_rows, grid, open_subtab

pytestmark = pytest.mark.e2e

page = test_browser.page

SPACE = {"learning_rate": {"low": 1e-3, "high": 5e-3, "log": True}}
BAD_SPACE = {"learning_rate": {"low": 5e-3, "high": 1e-3}}


def setup_template(client, text_slice) -> tuple[str, str]:
    from gradio_client import handle_file

    corpus = client.predict([handle_file(str(text_slice))], "text", api_name="/upload_corpus")
    base = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 20},
                          api_name="/start_pretraining")["run_id"]
    wait_for(lambda: client.predict(base, api_name="/run_status")["status"] == "completed",
             timeout=TRAINING_TIMEOUT_MS / 1000, message="the base model")
    dataset = client.predict("authors", handle_file(str(AUTHORS["train"])), "", "", handle_file(str(AUTHORS["dev"])),
                             api_name="/upload_dataset")
    template = client.predict({"dataset_id": dataset["dataset_id"], "base_model": base, "method": "lora",
                               "max_steps": 8, "eval_steps": 4, "logging_steps": 2, "max_seq_length": 48,
                               "name": "lora template"}, api_name="/start_finetuning")["run_id"]
    wait_for(lambda: client.predict(template, api_name="/run_status")["status"] == "completed",
             timeout=TRAINING_TIMEOUT_MS / 1000, message="the template run")
    return base, template


def space_box(page):
    return page.get_by_label("Search space (JSON)").filter(visible=True)


def test_user_defines_a_search_launches_it_watches_trials_and_promotes_the_best(page, app_server, wikitext_slice,
                                                                                tmp_path):
    from gradio_client import Client

    client = Client(app_server.url, verbose=False)
    try:
        _, template = setup_template(client, wikitext_slice)
        open_app(page, app_server.url)
        open_subtab(page, "Search")
        choose(page, "Template run", template)
        page.get_by_role("button", name="Suggest a space").click()
        expect(space_box(page)).to_have_value(re.compile(r'"lora_r"'))
        suggested = json.loads(space_box(page).input_value())
        assert suggested["learning_rate"] == {"low": 1e-4, "high": 5e-3, "log": True}

        runs_before = len(client.predict({}, api_name="/list_runs"))
        space_box(page).fill(json.dumps(BAD_SPACE))
        page.get_by_role("button", name="Start search").click()
        toast = page.get_by_test_id("toast-body").filter(has_text="space.learning_rate.low")
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("must be below high")
        toast.get_by_role("button", name="Close", exact=True).click()
        assert len(client.predict({}, api_name="/list_runs")) == runs_before  # nothing queued
        assert client.predict(api_name="/list_studies") == []

        space_box(page).fill(json.dumps(SPACE))
        page.get_by_label(re.compile(r"^Trials \(")).filter(visible=True).fill("2")
        choose(page, "Pruner", "none")
        page.get_by_label("Study name (optional)").filter(visible=True).fill("browser search")
        page.get_by_role("button", name="Start search").click()
        expect(page.get_by_role("combobox", name="Study", exact=True).filter(visible=True)).to_have_value(
            re.compile("browser search"))
        studies = client.predict(api_name="/list_studies")
        assert [s["name"] for s in studies] == ["browser search"]
        study_id = studies[0]["study_id"]

        table = grid(page, "Trials")
        expect(data_rows(table)).to_have_count(2, timeout=TRAINING_TIMEOUT_MS)
        expect(table.get_by_role("gridcell", name="completed", exact=True)).to_have_count(
            2, timeout=TRAINING_TIMEOUT_MS)
        status = client.predict(study_id, api_name="/search_status")
        assert status["status"] == "completed" and status["finished_trials"] == 2
        best = status["best"]
        expect(page.get_by_text(re.compile(rf"Best: trial {best['number']}"))).to_be_visible()
        expect(page.get_by_text(re.compile(r"completed; 2 of 2 trials finished"))).to_be_visible()
        for trial in status["trials"]:  # every trial a row, with its run id
            expect(table.get_by_role("gridcell", name=trial["run_id"], exact=True)).to_be_visible()
        plots = page.locator(".js-plotly-plot").filter(visible=True)
        expect(plots.first).to_be_visible()
        assert plots.count() >= 2  # objective over trials, parallel coordinates (importances need a spread)

        page.get_by_role("button", name="Clone best into its form").click()
        expect(page.get_by_role("tab", name="Fine-tune", selected=True)).to_be_visible()
        rate = page.get_by_label("Learning rate (0 = auto)", exact=True).filter(visible=True)
        # The clone's method (lora) resets the form's rate to auto first; then the cloned rate is put back.
        expect(rate).not_to_have_value(re.compile(r"^0?$"))
        assert float(rate.input_value()) == pytest.approx(best["params"]["learning_rate"], rel=1e-6)
        best_name = client.predict(best["run_id"], api_name="/run_status")["name"]
        expect(page.get_by_label("Run name").filter(visible=True)).to_have_value(f"{best_name} (copy)")
        assert page.js_errors == []
    except Exception:
        failure_report(page, app_server, tmp_path)
        raise

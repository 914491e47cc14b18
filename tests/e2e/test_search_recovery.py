"""A study survives a crash of the app: SIGKILL mid-trial, start again, and the study finishes its budget.

The trial that was training becomes `interrupted` (its run too) and does not count; the study goes on by
itself after the restart with new trials until n_trials have completed; no trial is lost or counted twice.
"""

import pytest
from conftest import AUTHORS, TINY_RUN, AppServer, wait_for
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from pretrain_studio.registry import Registry

pytestmark = pytest.mark.e2e


def test_a_study_killed_mid_trial_goes_on_after_the_restart_and_finishes_its_budget(tmp_path, wikitext_slice):
    workspace = tmp_path / "workspace"
    server = AppServer(workspace).start()
    try:
        client = Client(server.url, verbose=False)
        corpus = client.predict([handle_file(str(wikitext_slice))], "wiki", api_name="/upload_corpus")
        base = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 20},
                              api_name="/start_pretraining")["run_id"]
        wait_for(lambda: client.predict(base, api_name="/run_status")["status"] == "completed", timeout=300,
                 message="the base model")
        dataset = client.predict("authors", handle_file(str(AUTHORS["train"])), "", "", handle_file(str(AUTHORS["dev"])),
                                 api_name="/upload_dataset")
        template = {"kind": "finetune", "dataset_id": dataset["dataset_id"], "base_model": base, "method": "lora",
                    "max_steps": 40, "eval_steps": 4, "logging_steps": 1, "max_seq_length": 48}
        with pytest.raises(AppError, match=r"space\.learning_rate\.low: a log range must be above 0"):
            client.predict({"template": template, "space": {"learning_rate": {"low": 0, "high": 1e-3, "log": True}}},
                           api_name="/start_search")  # the API names the field, as the UI and the CLI do
        study_id = client.predict({"name": "crash", "template": template, "n_trials": 3, "pruner": "none",
                                   "objective": "eval_accuracy",
                                   "space": {"learning_rate": {"low": 1e-3, "high": 5e-3, "log": True}}},
                                  api_name="/start_search")["study_id"]
        registry = Registry(workspace / "studio.db")
        first = wait_for(lambda: (t := client.predict(study_id, api_name="/search_status")["trials"])
                         and (t[0]["steps"] or 0) >= 3 and t[0], timeout=300, message="the first trial training")
    finally:
        server.process.kill()  # SIGKILL: no shutdown handlers, exactly like a crash
        server.process.wait(timeout=30)
    assert registry.get_run(first["run_id"])["status"] == "running"  # what the dead process left behind

    server = AppServer(workspace).start()
    try:
        client = Client(server.url, verbose=False)
        status = wait_for(lambda: (s := client.predict(study_id, api_name="/search_status"))["status"] != "running"
                          and s, timeout=600, message="the study after the restart")
    finally:
        server.stop()
    assert status["status"] == "completed", status["reason"]
    trials = sorted(status["trials"], key=lambda t: t["number"])
    assert trials[0]["run_id"] == first["run_id"] and trials[0]["status"] == "interrupted"
    assert registry.get_run(first["run_id"])["status"] == "interrupted"
    assert [t["status"] for t in trials[1:]] == ["completed"] * 3  # the budget: 3 that count, after the lost one
    assert status["finished_trials"] == 3 and len(trials) == 4
    run_ids = [t["run_id"] for t in trials]
    assert len(set(run_ids)) == 4  # one run per trial, none told twice
    assert all(registry.get_run(r)["status"] in ("completed", "interrupted") for r in run_ids)
    assert status["best"]["number"] in (1, 2, 3)

"""Hyperparameter search through the real queue and Trainer: a tiny pretrained model, LoRA on "who wrote it?".

A study with a deliberately bad learning rate prunes that trial on its curve (status `pruned`, with the step and
the reason, its files gone) and finishes its budget; pause lets the training trial finish and starts no other;
resume adds trials; cancel ends the training trial; the grid sampler tries every point once; promote queues the
best trial's settings with more steps. Every bad input is refused naming its field before anything is queued.
"""

import time

import pytest
from conftest import AUTHORS, TINY_RUN, wait_for

from pretrain_studio.studio import Studio, StudioError
from pretrain_studio.ui.monitor_tab import search_lines

TRIAL = {"kind": "finetune", "method": "lora", "max_steps": 40, "eval_steps": 4, "logging_steps": 2,
         "batch_size": 16, "max_seq_length": 48, "seed": 3}
GOOD_RATES = [1e-3, 2e-3, 3e-3]
BAD_RATE = 0.5  # LoRA and its head moved by ~0.5 per step: the loss is far behind after 4 steps


@pytest.fixture(scope="module")
def setup(tmp_path_factory, wikitext_slice):
    studio = Studio(tmp_path_factory.mktemp("search") / "workspace")
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    base = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 20})["run_id"]
    wait_for(lambda: studio.run_status(base)["status"] == "completed", timeout=300, message="the base model")
    dataset = studio.upload_dataset("authors", AUTHORS["train"], validation_file=AUTHORS["dev"])
    template = {**TRIAL, "dataset_id": dataset["dataset_id"], "base_model": base}
    yield studio, template
    studio.close()


def search(template: dict, **values) -> dict:
    return {"name": "authors lora", "template": template,
            "space": {"learning_rate": {"low": 1e-4, "high": 1.0, "log": True}},
            "objective": "eval_loss", "n_trials": 4, "pruner": "median", "seed": 0, **values}


def ended(studio, study_id, states=("completed", "failed", "cancelled", "paused")):
    status = studio.search_status(study_id)
    settled = all(t["status"] not in ("queued", "running") for t in status["trials"])
    return status if status["status"] in states and settled else None


def test_a_bad_learning_rate_is_pruned_on_its_curve_and_the_budget_is_finished(setup):
    studio, template = setup
    first = [{"learning_rate": rate} for rate in [*GOOD_RATES, BAD_RATE]]
    study_id = studio.start_search(search(template, first_trials=first))["study_id"]
    status = wait_for(lambda: ended(studio, study_id), timeout=600, message="the study")
    assert status["status"] == "completed", status["reason"]
    trials = {t["number"]: t for t in status["trials"]}
    assert [trials[n]["params"]["learning_rate"] for n in range(4)] == [*GOOD_RATES, BAD_RATE]
    assert [trials[n]["status"] for n in range(3)] == ["completed"] * 3
    assert trials[3]["status"] == "pruned" and status["pruned_trials"] == 1 and status["finished_trials"] == 4

    pruned = studio.get_run(trials[3]["run_id"])
    assert pruned["status"] == "pruned"
    assert pruned["info"]["pruned"]["step"] == 4  # its first evaluation: behind the median there
    assert "behind the median" in pruned["info"]["pruned"]["reason"]
    assert pruned["step"] < TRIAL["max_steps"]  # the device went to the next trial before the end
    assert not (studio.workspace.run_dir(pruned["run_id"]) / "model").exists()  # a pruned trial keeps no model
    assert trials[3]["steps"] == pruned["step"] and "behind the median" in trials[3]["reason"]
    # Its page and the live monitor say it was pruned, where and why, and of which search.
    shown = search_lines(studio.run_status(pruned["run_id"]))
    assert shown[0].startswith("Trial 3 of search") and "**Pruned** at step 4 by its search" in shown[1]

    # Every trial is an ordinary run: in the runs table, tagged with its study, its sampled rate in its config.
    for trial in status["trials"]:
        run = studio.get_run(trial["run_id"])
        assert study_id in run["tags"] and run["info"]["study"] == {"id": study_id, "trial": trial["number"]}
        assert run["config"]["learning_rate"] == trial["params"]["learning_rate"]
    best = status["best"]
    assert best["number"] in (0, 1, 2)
    assert best["value"] == min(trials[n]["value"] for n in range(3))
    assert best["value"] < trials[3]["value"]  # the pruned trial's last point was worse than the best
    plots = studio.search_plots(study_id)
    assert plots["history"] is not None and plots["parallel"] is not None and plots["importance"] is not None


def test_pause_finishes_the_training_trial_and_resume_adds_trials(setup):
    studio, template = setup
    study_id = studio.start_search(search(template, n_trials=2, pruner="none", name="paused"))["study_id"]
    wait_for(lambda: studio.search_status(study_id)["trials"], timeout=60, message="the first trial")
    paused = studio.pause_search(study_id)
    assert paused["status"] == "paused"
    status = wait_for(lambda: ended(studio, study_id, ("paused",)), timeout=300, message="the paused study")
    time.sleep(3)  # a driver that ignored the pause would have queued its next trial by now
    status = studio.search_status(study_id)
    assert len(status["trials"]) == 1 and status["trials"][0]["status"] == "completed"  # it finished, and counts
    assert status["finished_trials"] == 1

    studio.resume_search(study_id, extra_trials=1)
    status = wait_for(lambda: ended(studio, study_id, ("completed",)), timeout=300, message="the resumed study")
    assert status["n_trials"] == 3 and status["finished_trials"] == 3
    assert [t["status"] for t in status["trials"]] == ["completed"] * 3


def test_cancel_ends_the_training_trial_and_the_study(setup):
    studio, template = setup
    study_id = studio.start_search(search({**template, "max_steps": 100_000}, n_trials=5,
                                          name="cancelled"))["study_id"]
    wait_for(lambda: (s := studio.search_status(study_id))["trials"] and (s["trials"][0]["steps"] or 0) > 2,
             timeout=300, message="the first trial training")
    studio.cancel_search(study_id)
    status = wait_for(lambda: ended(studio, study_id, ("cancelled",)), timeout=120, message="the cancelled study")
    time.sleep(2)
    status = studio.search_status(study_id)
    assert len(status["trials"]) == 1
    trial = status["trials"][0]
    assert trial["status"] == "cancelled" and status["finished_trials"] == 0  # a cancelled trial counts for nothing
    assert studio.run_status(trial["run_id"])["status"] == "cancelled"
    with pytest.raises(StudioError, match="cancelled"):
        studio.resume_search(study_id)


def test_the_grid_sampler_tries_every_point_once_and_promote_trains_the_best_longer(setup):
    studio, template = setup
    space = {"learning_rate": {"choices": [1e-3, 3e-3]}, "lora_r": {"choices": [2, 4]}}
    study_id = studio.start_search(search({**template, "max_steps": 8}, space=space, sampler="grid", n_trials=0,
                                          pruner="none", objective="eval_accuracy", name="grid"))["study_id"]
    status = wait_for(lambda: ended(studio, study_id, ("completed",)), timeout=300, message="the grid")
    points = sorted((t["params"]["learning_rate"], t["params"]["lora_r"]) for t in status["trials"])
    assert points == [(1e-3, 2), (1e-3, 4), (3e-3, 2), (3e-3, 4)] and status["n_trials"] == 4
    assert status["direction"] == "maximize"
    assert status["best"]["value"] == max(t["value"] for t in status["trials"])

    promoted = studio.promote_best(study_id, max_steps=12)
    run = studio.get_run(promoted["run_id"])
    assert run["config"]["max_steps"] == 12
    assert {k: run["config"][k] for k in ("learning_rate", "lora_r")} == status["best"]["params"]
    assert run["info"]["promoted_from"]["trial"] == status["best"]["number"]
    wait_for(lambda: studio.run_status(promoted["run_id"])["status"] == "completed", timeout=300,
             message="the promoted run")


BAD_INPUTS = [
    ({"space": {}}, "space: give at least one setting"),
    ({"space": {"learning_rate": {"low": 1e-3, "high": 1e-5}}}, "space.learning_rate.low: low (0.001) must be below high"),
    ({"space": {"learning_rate": {"low": 0, "high": 1e-3, "log": True}}}, "space.learning_rate.low: a log range must be above 0"),
    ({"space": {"dataset_id": {"choices": ["a", "b"]}}}, "space.dataset_id: not a setting a search may vary"),
    ({"space": {"lerning_rate": {"low": 1e-5, "high": 1e-3}}}, "space.lerning_rate: unknown setting"),
    ({"space": {"batch_size": {"low": 8.5, "high": 32}}}, "space.batch_size.low: batch_size is a whole number"),
    ({"space": {"learning_rate": {"low": -1.0, "high": 1e-3}}}, "space.learning_rate.low: learning_rate: must be at least 0"),
    ({"space": {"adapter_size": {"choices": [16, 32]}}}, "space.adapter_size: applies only to method adapter"),
    ({"space": {"learning_rate": {"low": 1e-5, "high": 1e-3}}, "sampler": "grid"}, "space.learning_rate: the grid sampler needs"),
    ({"n_trials": 0}, "n_trials: a budget of 0 runs nothing"),
    ({"n_trials": -2}, "n_trials: must be at least 0"),
    ({"objective": "test_accuracy"}, "never looks at the test split"),
    ({"objective": "eval_entity_f1"}, "objective: fine-tuning records eval_accuracy, eval_f1, eval_loss"),
    ({"direction": "maximize"}, "direction: eval_loss is better when lower: minimize it"),
    ({"sampler": "bayes"}, "sampler: choose one of tpe, random, grid"),
    ({"pruner": "hyperband"}, "pruner: choose one of median, successive_halving, none"),
    ({"template": "run-that-is-not-there"}, "template: run 'run-that-is-not-there' does not exist"),
    ({"first_trials": [{"learning_rate": 5.0}]}, "first_trials[0].learning_rate: give a number from 0.0001 to 1"),
    ({"n_trails": 4}, "n_trails: unknown key"),
    ({"space": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": "false"}}}, "space.learning_rate.log: give true or false"),
    ({"space": {"warmup_steps": {"low": 0, "high": 1.0, "step": 1e-7}}, "sampler": "grid"}, "space.warmup_steps.step: 10,000,001 values"),
    ({"space": {"lora_r": {"low": 2, "high": 16}}, "first_trials": [{"lora_r": 4.5}]}, "first_trials[0].lora_r: lora_r is a whole number"),
]


@pytest.mark.parametrize("change, message", BAD_INPUTS, ids=[m.split(":")[0] for _, m in BAD_INPUTS])
def test_a_bad_search_is_refused_naming_the_field_before_anything_is_queued(setup, change, message):
    studio, template = setup
    runs, studies = len(studio.list_runs()), len(studio.list_studies())
    with pytest.raises(StudioError) as refused:
        studio.start_search({**search(template), **change})
    assert message in str(refused.value)
    assert len(studio.list_runs()) == runs and len(studio.list_studies()) == studies


def test_a_template_the_launch_checks_refuse_is_named_as_the_template(setup):
    studio, template = setup
    with pytest.raises(StudioError, match=r"template: .*dataset_id"):
        studio.start_search(search({**template, "dataset_id": "no-such-dataset"}))


def test_the_suggested_space_is_the_methods_and_is_accepted_as_it_is(setup):
    studio, template = setup
    suggested = studio.suggested_space(template)
    assert suggested["space"]["learning_rate"] == {"low": 1e-4, "high": 5e-3, "log": True}  # LoRA's rates
    assert suggested["space"]["lora_r"] == {"choices": [4, 8, 16, 32]}
    assert suggested["objectives"] == ["eval_accuracy", "eval_f1", "eval_loss"]
    spec = studio.check_search(search(template, space=suggested["space"]))  # checked, nothing queued
    assert set(spec.space) == {"learning_rate", "lora_r"}

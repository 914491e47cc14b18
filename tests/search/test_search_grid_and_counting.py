"""The study's bookkeeping on a real (in-memory) Optuna study, without training: the grid tries a failed point
again and never a covered one twice; a resume starts a new failure streak; the sampler's seed moves on when a
study is loaded again, so a resumed study does not draw its first settings again."""

import optuna

from pretrain_studio.search import storage
from pretrain_studio.search.driver import budget_spent, failure_streak, next_grid_point
from pretrain_studio.search.space import Dimension, SearchSpec

FAIL, COMPLETE = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE


def spec(sampler: str = "grid", **values) -> SearchSpec:
    space = {"lora_r": Dimension("lora_r", "choices", choices=(2, 4)),
             "learning_rate": Dimension("learning_rate", "choices", choices=(1e-3, 3e-3))}
    return SearchSpec(name="s", kind="finetune", template={}, space=space, objective="eval_accuracy",
                      direction="maximize", sampler=sampler, n_trials=4, **values)


def test_the_grid_tries_a_failed_point_again_and_a_covered_one_never():
    grid = spec()
    study = optuna.create_study(direction="maximize", sampler=grid.sampler_object())
    study.set_user_attr(storage.TRIALS_ATTR, 4)
    tried = []
    for number in range(5):
        study.enqueue_trial(next_grid_point(grid, study.get_trials()))
        trial = study.ask()
        params = {n: d.suggest(trial) for n, d in grid.space.items()}
        tried.append(tuple(sorted(params.items())))
        study.tell(trial, state=FAIL) if number == 1 else study.tell(trial, 0.5)  # the second trial fails
    assert tried[2] == tried[1]  # the failed point, again at once
    assert len(set(tried)) == 4  # every point, each completed once
    assert sorted(t.state.name for t in study.get_trials()).count("COMPLETE") == 4
    assert next_grid_point(grid, study.get_trials()) is None
    assert budget_spent(grid, study, study.get_trials())[0]


def test_a_resume_starts_a_new_failure_streak():
    study = optuna.create_study()
    for _ in range(3):
        trial = study.ask()
        trial.set_user_attr("status", "failed")
        trial.set_user_attr("reason", "diverged")
        study.tell(trial, state=FAIL)
    trials = study.get_trials()
    assert "the last 3 trials failed; the last said: diverged" in failure_streak(trials)
    assert failure_streak(trials, since=3) == ""  # resumed at trial 3: the old failures no longer end it


def test_a_study_loaded_again_does_not_draw_its_first_settings_again(tmp_path):
    url = storage.default_url(tmp_path)
    random = spec("random", seed=7)
    random.space = {"learning_rate": Dimension("learning_rate", "float", 1e-5, 1e-2, log=True)}
    storage.create_study("study-x", random, url, creator="m ws")
    first, _ = storage.load_study("study-x", url, "m", "ws")
    trial = first.ask()
    drawn = random.space["learning_rate"].suggest(trial)
    first.tell(trial, 0.5)
    again, _ = storage.load_study("study-x", url, "m", "ws")  # as after a pause or a restart
    trial = again.ask()
    assert random.space["learning_rate"].suggest(trial) != drawn
    fresh = optuna.create_study(sampler=random.sampler_object())  # the seed alone gives the first draw again
    assert random.space["learning_rate"].suggest(fresh.ask()) == drawn

"""`pretrain-studio search` in a real subprocess: a study from a JSON file, trained in the foreground; a second
workspace (standing in for a second machine: a copy of the first, with its data) joining the same study through
the shared storage URL; and bad input answered with one line naming the problem and exit status 2."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import AUTHORS, REPO, TINY_RUN, wait_for

from pretrain_studio.registry import Registry
from pretrain_studio.search import storage
from pretrain_studio.studio import Studio


def cli(*args, workspace):
    return subprocess.run([sys.executable, "-m", "pretrain_studio", "search", *args, "--workspace", str(workspace)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, wikitext_slice):
    """A workspace with a tiny base model and the "who wrote it?" dataset, and a search config over them."""
    root = tmp_path_factory.mktemp("search-cli")
    studio = Studio(root / "ws")
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    base = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 20})["run_id"]
    wait_for(lambda: studio.run_status(base)["status"] == "completed", timeout=300, message="the base model")
    dataset = studio.upload_dataset("authors", AUTHORS["train"], validation_file=AUTHORS["dev"])
    studio.close()
    config = {"name": "cli search", "n_trials": 2, "pruner": "none", "objective": "eval_accuracy",
              "template": {"kind": "finetune", "dataset_id": dataset["dataset_id"], "base_model": base,
                           "method": "lora", "max_steps": 8, "eval_steps": 4, "logging_steps": 2,
                           "max_seq_length": 48},
              "space": {"learning_rate": {"low": 1e-3, "high": 5e-3, "log": True}, "lora_r": {"choices": [2, 4]}}}
    path = root / "search.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return root / "ws", path


def test_a_search_from_a_file_then_a_second_workspace_joins_the_same_study(workspace, tmp_path):
    ws, config = workspace
    result = cli(str(config), workspace=ws)
    assert result.returncode == 0, result.stderr
    study_id = next(line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith("study "))
    assert "completed (2 of 2 trials finished)" in result.stdout and "best: trial" in result.stdout
    first_runs = {r["id"] for r in Registry(ws / "studio.db").list_runs() if study_id in r["tags"]}
    assert len(first_runs) == 2

    # The second "machine": its own workspace holding the same data (a copy), the study's database by URL.
    other = tmp_path / "other-ws"
    shutil.copytree(ws, other, ignore=shutil.ignore_patterns("search.db*"))
    url = storage.default_url(ws)
    joined = cli("--study", study_id, "--storage", url, "--extra-trials", "1", workspace=other)
    assert joined.returncode == 0, joined.stderr
    assert "joined, 2 of 3 trials finished" in joined.stdout
    assert "completed (3 of 3 trials finished)" in joined.stdout

    study, _ = storage.load_study(study_id, url)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert {t.user_attrs["workspace"] for t in trials[:2]} == {str(ws.resolve())}
    assert trials[2].user_attrs["workspace"] == str(other.resolve())
    # Each machine's trial is a run in its own registry, and only there.
    assert trials[2].user_attrs["run_id"] in {r["id"] for r in Registry(other / "studio.db").list_runs()}
    assert trials[2].user_attrs["run_id"] not in {r["id"] for r in Registry(ws / "studio.db").list_runs()}
    assert Registry(other / "studio.db").get_study(study_id)["storage"] == url


def test_bad_search_input_exits_2_naming_the_problem(workspace, tmp_path):
    ws, config = workspace
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "space": {,}}', encoding="utf-8")
    result = cli(str(broken), workspace=ws)
    assert result.returncode == 2 and "broken.json: line 2: not valid JSON" in result.stderr
    bad = json.loads(config.read_text())
    bad["space"]["learning_rate"]["low"] = 0
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    result = cli(str(tmp_path / "bad.json"), workspace=ws)
    assert result.returncode == 2 and "space.learning_rate.low: a log range must be above 0" in result.stderr
    result = cli("--study", "study-nope", workspace=ws)
    assert result.returncode == 2 and "give --storage URL" in result.stderr
    result = cli(workspace=ws)
    assert result.returncode == 2 and "give a search config file, or --study" in result.stderr
    assert "Traceback" not in result.stderr

"""Experiment management in the engine: the runs table, rename/tags/notes, cancel vs stop, resume (also past a
damaged checkpoint), delete with dependents, the queue's order, sweeps, comparison and export."""

import json
import zipfile

import pytest
from conftest import TINY_RUN, wait_for
from transformers import AutoTokenizer, pipeline

from pretrain_studio.studio import Studio, StudioError


def final(studio, run_id, timeout=600):
    return wait_for(lambda: (s := studio.run_status(run_id))["status"] not in ("queued", "running") and s,
                    timeout=timeout, message=f"run {run_id} to end")


@pytest.fixture(scope="module")
def env(tmp_path_factory, wikitext_slice):
    studio = Studio(tmp_path_factory.mktemp("runs") / "workspace")
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    yield studio, corpus["corpus_id"]
    studio.close()


@pytest.fixture(scope="module")
def done(env):
    """A completed tiny pretraining run."""
    studio, corpus_id = env
    run_id = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "name": "baseline run"})["run_id"]
    assert final(studio, run_id)["status"] == "completed"
    return run_id


def test_runs_table_filters_and_best_metric(env, done):
    studio, _ = env
    [row] = [r for r in studio.list_runs() if r["run_id"] == done]
    assert row["kind"] == "pretrain" and row["method"] == "mlm" and row["data"] == "wiki"
    eval_losses = [m["value"] for m in studio.run_metrics(done) if m["name"] == "eval_loss"]
    assert row["best_metric"] == {"name": "eval_loss", "value": min(eval_losses)}
    assert [r["run_id"] for r in studio.list_runs({"text": "baseline"})] == [done]
    assert studio.list_runs({"text": "no such run"}) == []
    assert all(r["kind"] == "pretrain" for r in studio.list_runs({"kind": "pretrain"}))
    assert studio.list_runs({"kind": "finetune"}) == []


def test_rename_tags_and_notes(env, done):
    studio, _ = env
    studio.rename_run(done, "renamed run")
    studio.tag_run(done, "keep, baseline ,keep", notes="the first try")
    page = studio.get_run(done)
    assert page["name"] == "renamed run" and page["tags"] == ["baseline", "keep"] and page["notes"] == "the first try"
    assert [r["run_id"] for r in studio.list_runs({"tag": "keep"})] == [done]
    with pytest.raises(StudioError, match="name"):
        studio.rename_run(done, "  ")


def test_run_page_has_config_files_and_lineage(env, done):
    studio, _ = env
    page = studio.get_run(done)
    assert page["config"]["max_steps"] == TINY_RUN["max_steps"]
    assert "model/model.safetensors" in page["files"] and "config.json" in page["files"]
    assert page["lineage"]["corpus"]["name"] == "wiki"
    assert page["lineage"]["tokenizer"] == "trained on the corpus"
    assert page["final_metrics"]["eval_loss"] > 0


def test_cancel_keeps_nothing_but_stop_keeps_a_checkpoint(env):
    studio, corpus_id = env
    run_id = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 5000, "save_steps": 3})["run_id"]
    wait_for(lambda: studio.run_status(run_id)["step"] >= 4, timeout=300, message="a few steps")
    studio.cancel_run(run_id)
    status = final(studio, run_id, timeout=120)
    assert status["status"] == "cancelled"
    run_dir = studio.workspace.run_dir(run_id)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "model").exists()
    with pytest.raises(StudioError, match="cancelled"):
        studio.resume_run(run_id)


def test_stop_then_resume_continues_the_step_count_and_the_curve(env):
    studio, corpus_id = env
    run_id = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 5000, "save_steps": 5,
                                       "logging_steps": 1})["run_id"]
    wait_for(lambda: studio.run_status(run_id)["step"] >= 7, timeout=300, message="steps")
    studio.stop_run(run_id)
    stopped = final(studio, run_id, timeout=120)
    assert stopped["status"] == "stopped"
    with pytest.raises(StudioError, match="max_steps"):
        studio.resume_run(run_id, {"max_steps": 2})
    with pytest.raises(StudioError, match="learning_rate"):
        studio.resume_run(run_id, {"learning_rate": 1.0})
    resumed = studio.resume_run(run_id, {"max_steps": stopped["step"] + 6})
    assert resumed["from_checkpoint"] == f"checkpoint-{stopped['step']}"
    status = final(studio, run_id)
    assert status["status"] == "completed" and status["step"] == stopped["step"] + 6
    train_steps = [m["step"] for m in studio.run_metrics(run_id) if m["name"] == "train_loss"]
    assert train_steps == sorted(set(train_steps))  # one point per step, no repeats from the resume
    assert train_steps[-1] == stopped["step"] + 6
    assert "resuming from checkpoint-" in studio.log_tail(run_id, 200)


def test_resume_skips_a_damaged_newest_checkpoint(env):
    studio, corpus_id = env
    run_id = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 5000, "save_steps": 4,
                                       "logging_steps": 1})["run_id"]
    wait_for(lambda: studio.run_status(run_id)["step"] >= 9, timeout=300, message="two checkpoints")
    studio.stop_run(run_id)
    stopped = final(studio, run_id, timeout=120)
    checkpoints = sorted((studio.workspace.run_dir(run_id) / "checkpoints").glob("checkpoint-*"),
                         key=lambda p: int(p.name.split("-")[1]))
    newest, previous = checkpoints[-1], checkpoints[-2]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # as if killed mid-write
    resumed = studio.resume_run(run_id, {"max_steps": stopped["step"] + 3})
    assert resumed["from_checkpoint"] == previous.name
    status = final(studio, run_id)
    assert status["status"] == "completed", status["error"]
    assert f"skipping {newest.name}" in studio.log_tail(run_id, 300)


def test_delete_refuses_a_base_of_other_runs_then_removes_rows_and_files(env):
    studio, corpus_id = env
    parent = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 4})["run_id"]
    final(studio, parent)
    child = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 2, "base_model": parent})["run_id"]
    final(studio, child)
    assert studio.get_run(parent)["lineage"]["descendants"][0]["run_id"] == child
    assert studio.get_run(child)["lineage"]["ancestors"][0]["run_id"] == parent
    with pytest.raises(StudioError, match=child):
        studio.delete_run(parent)
    assert studio.workspace.run_dir(parent).exists()
    studio.delete_run(child)
    assert not studio.workspace.run_dir(child).exists() and studio.registry.get_run(child) is None
    assert studio.registry.metrics_since(child) == []
    studio.delete_run(parent)
    assert studio.registry.get_run(parent) is None


def test_queue_order_can_be_changed(tmp_path):
    studio = Studio(tmp_path / "ws", start_worker=False)  # nothing runs: only the order is checked
    corpus_id = studio.list_corpora()[0]["corpus_id"]
    ids = [studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "name": f"q{i}"})["run_id"] for i in range(3)]
    assert [r["run_id"] for r in studio.queue()] == ids
    assert [r["run_id"] for r in studio.move_in_queue(ids[2], 0)] == [ids[2], ids[0], ids[1]]
    assert studio.registry.claim_next_queued("cpu")["id"] == ids[2]
    studio.cancel_run(ids[1])
    assert [r["run_id"] for r in studio.queue()] == [ids[0]]


def test_sweep_runs_its_grid_in_order_and_survives_a_failing_member(env, wikitext_slice):
    import shutil

    studio, corpus_id = env
    doomed = studio.upload_corpus([wikitext_slice], "doomed")["corpus_id"]
    ids = studio.enqueue_sweep({**TINY_RUN, "corpus_id": corpus_id, "max_steps": 6, "name": "grid"},
                               {"corpus_id": [corpus_id, doomed], "learning_rate": [1e-3, 3e-3]})
    assert len(ids) == 4
    # The second corpus loses its files while its runs wait in the queue: those two runs must fail, alone.
    shutil.rmtree(studio.registry.get_corpus(doomed)["path"])
    statuses = [final(studio, run_id) for run_id in ids]
    assert [s["status"] for s in statuses] == ["completed", "completed", "failed", "failed"]
    assert "missing" in statuses[2]["error"]
    started = [s["started_at"] for s in statuses]
    assert started == sorted(started)
    assert [s["config"]["learning_rate"] for s in statuses] == [1e-3, 3e-3, 1e-3, 3e-3]
    assert all(studio.get_run(run_id)["tags"][0].startswith("sweep-") for run_id in ids)
    with pytest.raises(StudioError, match="learning_rate"):
        studio.enqueue_sweep({**TINY_RUN, "corpus_id": corpus_id}, {"learning_rate": [1e-3, -1]})


def test_compare_lists_only_differing_settings(env, done):
    studio, corpus_id = env
    other = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "learning_rate": 1e-3, "max_steps": 4})
    final(studio, other["run_id"])
    result = studio.compare_runs([done, other["run_id"]])
    assert set(result["differing_settings"]) == {"learning_rate", "max_steps"}
    assert result["differing_settings"]["learning_rate"] == {done: TINY_RUN["learning_rate"], other["run_id"]: 1e-3}
    assert "eval_loss" in result["final_metrics"][done]
    with pytest.raises(StudioError, match="two"):
        studio.compare_runs([done])


def test_export_zip_loads_with_plain_transformers(env, done, tmp_path):
    studio, _ = env
    archive = studio.export_run(done)
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        z.extractall(tmp_path)
    root = tmp_path / done
    assert {f"{done}/config.json", f"{done}/metrics.csv", f"{done}/README.md", f"{done}/command.txt",
            f"{done}/model/model.safetensors"} <= names
    card = (root / "README.md").read_text()
    assert "fingerprint" in card and "transformers" in card and "eval_loss" in card
    assert json.loads((root / "config.json").read_text())["kind"] == "pretrain"
    assert len((root / "metrics.csv").read_text().splitlines()) == len(studio.run_metrics(done)) + 1
    fill = pipeline("fill-mask", model=str(root / "model"), tokenizer=str(root / "model"))
    assert len(fill("the [MASK] was good .", top_k=2)) == 2
    assert AutoTokenizer.from_pretrained(root / "model").mask_token == "[MASK]"

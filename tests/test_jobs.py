"""The job runner: launches return at once, runs queue one at a time per device, a failing run does not stop
the queue, bad settings are refused before anything is queued, and nothing already stored is touched."""

import shutil

import pytest
from conftest import TINY_RUN, wait_for

from pretrain_studio.studio import StudioError


def final(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


def test_second_launch_queues_behind_the_first_and_a_failure_does_not_stop_the_queue(studio, wikitext_slice):
    corpus = studio.upload_corpus([wikitext_slice], "wiki")
    doomed = studio.upload_corpus([wikitext_slice], "to be deleted")
    first = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 30})
    failing = studio.start_pretraining({**TINY_RUN, "corpus_id": doomed["corpus_id"]})
    last = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 10})
    assert first["status"] == failing["status"] == last["status"] == "queued"
    # The corpus files vanish before its run starts: that run must fail with a message, not kill the worker.
    shutil.rmtree(studio.registry.get_corpus(doomed["corpus_id"])["path"])

    def only_one_running():
        running = [r for r in studio.list_runs() if r["status"] == "running"]
        assert len(running) <= 1, "two trainings on one device"
        return final(studio, last["run_id"])

    wait_for(only_one_running, timeout=600, interval=0.2, message="the queue to drain")
    assert final(studio, first["run_id"])["status"] == "completed"
    failed = final(studio, failing["run_id"])
    assert failed["status"] == "failed"
    assert "files of corpus 'to be deleted' are missing" in failed["error"]
    assert "last log lines" in failed["error"]
    assert final(studio, last["run_id"])["status"] == "completed"


@pytest.mark.parametrize("values, field_name", [
    ({"learning_rate": -1e-3}, "learning_rate"),
    ({"batch_size": 0}, "batch_size"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"base_model": "/no/such/folder"}, "base_model"),
    ({"corpus_id": "corpus-missing"}, "corpus_id"),
    ({"precision": "fp16", "device": "cpu"}, "precision"),
])
def test_bad_settings_are_refused_before_any_run_exists(studio, values, field_name):
    corpus_id = studio.list_corpora()[0]["corpus_id"]
    with pytest.raises(StudioError) as err:
        studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, **values})
    assert field_name in str(err.value)
    assert studio.list_runs() == []


def test_base_model_folder_that_is_not_a_model(studio, tmp_path):
    (tmp_path / "empty").mkdir()
    corpus_id = studio.list_corpora()[0]["corpus_id"]
    with pytest.raises(StudioError, match="no config.json"):
        studio.start_pretraining({"corpus_id": corpus_id, "base_model": str(tmp_path / "empty")})


def test_bad_upload_stores_nothing_and_keeps_existing_corpora(studio, tmp_path):
    before = studio.list_corpora()
    bad = tmp_path / "notes.docx"
    bad.write_bytes(b"PK\x03\x04 not a text file")
    with pytest.raises(StudioError, match="notes.docx"):
        studio.upload_corpus([bad], "bad")
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n\n")
    with pytest.raises(StudioError, match="empty.txt"):
        studio.upload_corpus([empty], "empty")
    assert studio.list_corpora() == before
    assert sorted(p.name for p in studio.workspace.corpora_dir.iterdir()) == [c["corpus_id"] for c in before]


def test_first_start_registers_the_sample_corpus_once(tmp_path):
    from pretrain_studio.studio import SAMPLE_CORPUS_NAME, Studio

    first = Studio(tmp_path / "ws", start_worker=False)
    assert [c["name"] for c in first.list_corpora()] == [SAMPLE_CORPUS_NAME]
    assert first.list_corpora()[0]["documents"] > 100
    [dataset] = first.list_datasets()
    assert dataset["labels"] == ["Austen", "Chesterton", "Melville"]
    assert set(dataset["splits"]) == {"train", "validation", "test"}
    again = Studio(tmp_path / "ws", start_worker=False)
    assert len(again.list_corpora()) == 1 and len(again.list_datasets()) == 1


def test_unknown_run_is_named(studio):
    with pytest.raises(StudioError, match="run-nope"):
        studio.run_status("run-nope")
    with pytest.raises(StudioError, match="run-nope"):
        studio.fill_mask("run-nope", "a [MASK] b", 3)

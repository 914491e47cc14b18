"""The documented API, end to end: a real `python app.py` process driven with `gradio_client`.

Uploads a slice of WikiText-2, pretrains a tiny model in the app's background worker, polls status and
only-new metrics (also through the plain JSON polling routes), sees eval loss fall, and gets fill-mask answers from the trained model. Bad requests come
back as a clear message (AppError), never a traceback, and store nothing.
"""

import httpx
import pytest
from conftest import TINY_RUN, wait_for
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def corpus(client, wikitext_slice):
    return client.predict([handle_file(str(wikitext_slice))], "wiki slice", api_name="/upload_corpus")


def test_upload_corpus_returns_its_statistics(client, corpus, wikitext_slice):
    lines = [l.strip() for l in wikitext_slice.read_bytes().decode("utf-8").splitlines() if l.strip()]
    # One document per line, exact repeats removed (the default; the Moby Dick slice repeats 10 lines: "OF", ...).
    assert corpus["documents"] == len(set(lines)) < len(lines)
    assert corpus["duplicate_documents"] == corpus["removed"]["exact_duplicates"] == len(lines) - len(set(lines))
    assert corpus["name"] == "wiki slice" and corpus["corpus_id"].startswith("corpus-")
    assert corpus["characters"] > 10_000
    listed = client.predict(api_name="/list_corpora")
    assert corpus["corpus_id"] in [c["corpus_id"] for c in listed]


def test_upload_corpus_cleaning_options(client, wikitext_slice, tmp_path):
    """The cleaning options (issue 16) are parameters of /upload_corpus, after the four it always had."""
    lines = [l.strip() for l in wikitext_slice.read_bytes().decode("utf-8").splitlines() if l.strip()]
    kept = client.predict([handle_file(str(wikitext_slice))], "kept", "lines", "", False, api_name="/upload_corpus")
    assert kept["documents"] == len(lines) and kept["removed"]["exact_duplicates"] == 0
    assert kept["duplicate_documents"] == len(lines) - len(set(lines)) and kept["cleaning"]["dedupe"] is False
    book = tmp_path / "book.txt"
    book.write_text("Produced by a volunteer\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nCall me Ishmael.\n"
                    "* * * * *\nCall me Ishmael.\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nLicence\n")
    cleaned = client.predict(files=[handle_file(str(book))], name="cleaned", strip_gutenberg=True,
                             drop_boilerplate_lines=True, api_name="/upload_corpus")
    assert cleaned["documents"] == 1
    assert cleaned["removed"] == {"exact_duplicates": 1, "near_duplicates": 0, "boilerplate_lines": 1,
                                  "gutenberg_boilerplate": 4}
    with pytest.raises(AppError, match="dedupe must be true or false"):
        client.predict([handle_file(str(book))], "bad", "lines", "", "maybe", api_name="/upload_corpus")


def test_pretrain_poll_and_fill_mask(client, corpus, app_server):
    launched = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"]}, api_name="/start_pretraining")
    run_id = launched["run_id"]
    assert launched["status"] in ("queued", "running")

    seen, after = [], 0
    def done():
        nonlocal after
        rows = client.predict(run_id, after, api_name="/run_metrics")
        assert all(r["id"] > after for r in rows), "run_metrics returned rows already seen"
        seen.extend(rows)
        if rows:
            after = rows[-1]["id"]
        status = client.predict(run_id, api_name="/run_status")
        return status if status["status"] not in ("queued", "running") else None

    status = wait_for(done, timeout=600, interval=1, message="the run to finish")
    assert status["status"] == "completed", status["error"]
    assert status["kind"] == "pretrain" and status["step"] == status["max_steps"] == TINY_RUN["max_steps"]
    assert status["cli_command"].startswith("pretrain-studio run ")
    seen.extend(client.predict(run_id, after, api_name="/run_metrics"))
    assert len({r["id"] for r in seen}) == len(seen)  # polling by id never repeats a row
    full = client.predict(run_id, 0, api_name="/run_metrics")
    assert [r["id"] for r in seen] == [r["id"] for r in full]
    eval_loss = [r["value"] for r in full if r["name"] == "eval_loss"]
    assert eval_loss[-1] < eval_loss[0] - 0.5
    assert {"train_loss", "eval_accuracy", "perplexity", "learning_rate"} <= {r["name"] for r in full}

    answers = client.predict(run_id, "the game was released in [MASK] .", 5, api_name="/fill_mask")
    assert len(answers) == 1 and len(answers[0]) == 5
    assert {"token", "score", "sequence"} <= set(answers[0][0])
    # The answers come from the trained model: plain transformers on the run's folder agrees.
    from transformers import pipeline

    model_dir = str(app_server.workspace / "runs" / run_id / "model")
    expected = pipeline("fill-mask", model=model_dir, tokenizer=model_dir)("the game was released in [MASK] .", top_k=5)
    assert [a["token"] for a in answers[0]] == [e["token_str"].replace(" ", "") for e in expected]
    runs = client.predict(api_name="/list_runs")
    assert run_id in [r["run_id"] for r in runs]

    # The plain JSON polling routes give the same answers as the Gradio endpoints, without Gradio's queue.
    light = httpx.Client(base_url=app_server.url, timeout=30)
    assert light.get(f"studio_api/run_status/{run_id}").json() == client.predict(run_id, api_name="/run_status")
    assert light.get(f"studio_api/run_metrics/{run_id}").json() == full
    assert light.get(f"studio_api/run_metrics/{run_id}", params={"after_id": full[3]["id"]}).json() == full[4:]
    missing = light.get("studio_api/run_metrics/run-none")
    assert missing.status_code == 404 and missing.json()["error"] == "run 'run-none' does not exist"


def test_stop_run(client, corpus):
    run_id = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 5000},
                            api_name="/start_pretraining")["run_id"]
    wait_for(lambda: client.predict(run_id, api_name="/run_status")["step"] >= 2, timeout=300, message="steps")
    assert client.predict(run_id, api_name="/stop_run")["run_id"] == run_id
    status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["status"] == "stopped" and s,
                      timeout=120, message="stopped")
    assert status["step"] < 5000


@pytest.mark.parametrize("endpoint, args, expected", [
    ("/start_pretraining", ({"corpus_id": "corpus-none"},), "corpus_id"),
    ("/run_status", ("run-none",), "run-none"),
    ("/fill_mask", ("run-none", "a [MASK]", 3), "run-none"),
])
def test_bad_requests_get_a_clear_message(client, endpoint, args, expected):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=endpoint)
    assert expected in str(err.value) and "Traceback" not in str(err.value)


def test_bad_settings_and_files_are_refused_and_nothing_is_stored(client, corpus, tmp_path):
    before_runs = len(client.predict(api_name="/list_runs"))
    before_corpora = len(client.predict(api_name="/list_corpora"))
    with pytest.raises(AppError, match="learning_rate"):
        client.predict({"corpus_id": corpus["corpus_id"], "learning_rate": -1}, api_name="/start_pretraining")
    with pytest.raises(AppError, match="batch_size"):
        client.predict({"corpus_id": corpus["corpus_id"], "batch_size": 0}, api_name="/start_pretraining")
    bad = tmp_path / "table.csv"
    bad.write_text("id,body\n1,hello there\n2,general kenobi\n")
    with pytest.raises(AppError) as err:
        client.predict([handle_file(str(bad))], "bad", "lines", "text", api_name="/upload_corpus")
    assert "table.csv" in str(err.value) and "text" in str(err.value)
    assert len(client.predict(api_name="/list_runs")) == before_runs
    assert len(client.predict(api_name="/list_corpora")) == before_corpora

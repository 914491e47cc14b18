"""Chinese end to end on real data (tests/data): a tiny model pretrained on the start of Hongloumeng (红楼梦) fills
masks with Chinese characters, Chinese whole-word masking masks jieba words whole, a classifier fine-tuned to tell
three classical novels apart (红楼梦 / 西游记 / 三国演义, Chinese label names) keeps those names in classify, the predictions CSV (plain UTF-8, the API's
format), the run's test metrics, the export and the charts; corpus statistics and the tokenizer report count
Chinese characters as they should."""

import csv
import io
import json
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import HONGLOUMENG, MOBY_DICK, NOVELS_ZH, TINY_RUN, wait_for

from pretrain_studio.data.chinese import CJK_PATTERN, chinese_word_starts, count_words
from pretrain_studio.data.corpus import ingest_corpus, load_corpus
from pretrain_studio.data.tokenizer import iter_text_batches, tokenizer_report, train_tokenizer
from pretrain_studio.studio import Studio
from pretrain_studio.training import mlm_data
from pretrain_studio.training.masking import MaskingCollator, continuation_tokens
from pretrain_studio.training.mlm_data import (DONE, cache_key, held_out_split, pack_function, packed_blocks,
                                               split_fingerprint)

LABEL_NAMES = ["三国演义", "红楼梦", "西游记"]  # Chinese label names must survive everywhere

# The pretraining run: the tiny preset on the novel's first 59 paragraphs (tests/data/hongloumeng_start.txt: 9,700
# characters, about 150 blocks of 64 tokens; 15% held out for evaluation: 5% would be less than a block),
# 200 steps (about 20 s): the model has learnt the novel's
# characters and their frequencies. A masking rate of 0.3 learns a little faster than 0.15 here. (On the whole
# first chapters, in the shared data, 800 steps reach a masked-token accuracy of 0.13; see bench/chinese_demo.py.)
HLM_RUN = {**TINY_RUN, "vocab_size": 3000, "max_steps": 200, "batch_size": 32, "max_seq_length": 64,
           "learning_rate": 1e-3, "warmup_steps": 20, "eval_steps": 50, "logging_steps": 10, "save_steps": 200,
           "eval_fraction": 0.15, "mask_probability": 0.3}
# Batch 32 for 160 steps (about 34 epochs of the 150 training windows).
FINETUNE_RUN = {"method": "full", "max_steps": 160, "batch_size": 32, "max_seq_length": 96, "learning_rate": 3e-4,
                "eval_steps": 80, "logging_steps": 10, "seed": 3}


def is_cjk(token: str) -> bool:
    return len(token) == 1 and CJK_PATTERN.fullmatch(token) is not None


def hongloumeng_slice(path):
    """tests/data/hongloumeng_start.txt (the novel's first 120 lines: one paragraph a line, blank lines between),
    bytes untouched."""
    path.write_bytes(HONGLOUMENG.read_bytes())
    return path


def finished(studio, run_id):
    status = studio.run_status(run_id)
    return status if status["status"] not in ("queued", "running") else None


# --------------------------------------------------------------------------- tokenizer and corpus statistics


@pytest.fixture(scope="module")
def hlm_corpus(tmp_path_factory):
    """The slice ingested, its held-out split and a WordPiece tokenizer trained on its training documents."""
    folder = tmp_path_factory.mktemp("hlm")
    stats = ingest_corpus([hongloumeng_slice(folder / "hlm.txt")], folder / "corpus")
    corpus = load_corpus(folder / "corpus")
    split = held_out_split(corpus, 0.1, 1)
    tokenizer = train_tokenizer(iter_text_batches(split["train"]), 3000)
    return stats, corpus, split, split_fingerprint(corpus, 0.1, 1), tokenizer


def test_every_chinese_character_is_a_token_of_its_own_as_in_bert_chinese(hlm_corpus):
    _, _, split, _, tokenizer = hlm_corpus
    text = split["train"][20]["text"]
    tokens = tokenizer.tokenize(text)
    assert sum(map(is_cjk, tokens)) == len(CJK_PATTERN.findall(text)) > 50  # one token per ideograph
    vocab = tokenizer.get_vocab()
    # WordPiece never glues ideographs together nor makes "##" pieces of them.
    assert not [t for t in vocab if len(t.lstrip("#")) > 1 and CJK_PATTERN.search(t)]
    decoded = tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)
    assert "[UNK]" not in tokens and decoded.replace(" ", "") == "".join(text.split())
    # Lowercasing with accent stripping (the default, as in BERT-Chinese) leaves Chinese as it is.
    cased = train_tokenizer([[text]], 300, lowercase=False).backend_tokenizer.normalizer
    assert tokenizer.backend_tokenizer.normalizer.normalize_str(text) == cased.normalize_str(text)


def test_corpus_statistics_count_chinese_characters(hlm_corpus):
    stats, corpus, _, _, _ = hlm_corpus
    texts = corpus["text"]
    cjk = sum(len(CJK_PATTERN.findall(t)) for t in texts)
    assert stats.cjk_characters == cjk and 0.75 < stats.cjk_share < 0.95
    assert stats.to_dict()["cjk_share"] == round(cjk / stats.characters, 6)
    assert stats.distinct_characters == len(set("".join(texts))) > 1000
    # Words: each ideograph is one (whitespace would find about one "word" per paragraph).
    assert stats.words == sum(count_words(t)[0] for t in texts)
    assert cjk <= stats.words < stats.characters and stats.words > 20 * sum(len(t.split()) for t in texts)
    # English counts as before: whitespace-separated words, no CJK.
    assert count_words("the Tower of London, 1078") == (5, 0) and count_words("café 宝玉 au lait") == (5, 2)


def test_tokenizer_report_measures_unknown_characters_and_the_chinese_share(hlm_corpus):
    _, corpus, _, _, tokenizer = hlm_corpus
    vocab = tokenizer.get_vocab()
    missing = next(ch for ch in "氢氧氮碳钠镁铝硅磷硫氯钾钙" if ch not in vocab)  # chemistry: not in the novel
    report = tokenizer_report(tokenizer, ["宝玉" + missing + "黛玉", "宝玉笑道"], max_seq_length=64)
    assert report["unknown_character_rate"] == pytest.approx(1 / 9)  # one character of nine became [UNK]
    assert report["cjk_share"] == 1.0 and report["characters_sampled"] == 9
    english = tokenizer_report(tokenizer, ["Persuasion"], 64)  # no Latin in the vocabulary: one [UNK], 10 chars
    assert english["unknown_character_rate"] == 1.0 and english["cjk_share"] == 0.0
    on_corpus = tokenizer_report(tokenizer, corpus["text"][:200], 64)
    assert on_corpus["unknown_character_rate"] < 0.01 and on_corpus["cjk_share"] > 0.75


# --------------------------------------------------------------------------- Chinese whole-word masking


def test_word_starts_follow_jieba_for_chinese_and_wordpiece_for_other_words(hlm_corpus):
    import jieba

    _, corpus, _, _, tokenizer = hlm_corpus
    continuation = continuation_tokens(tokenizer).numpy()
    text = corpus[30]["text"]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, tokens = encoded["input_ids"], tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    starts = chinese_word_starts(text, encoded["offset_mapping"], continuation[ids])
    groups, current = [], ""
    for token, start in zip(tokens, starts):
        if is_cjk(token):
            if start and current:
                groups.append(current)
            current = token if start else current + token
        elif current:
            groups.append(current)
            current = ""
    groups += [current] if current else []
    assert groups == [w for w in jieba.lcut(text) if all(map(is_cjk, w))]  # the ideographs grouped as jieba does
    assert sum(len(g) > 1 for g in groups) > 20

    # Beside Chinese, a word WordPiece cuts into pieces is one word: its "##" pieces continue it.
    mixed = train_tokenizer([corpus["text"][:300], [MOBY_DICK.read_text(encoding="utf-8")[:200_000]]], 3500)
    text = "宝玉读了unbelievably长的书"
    encoded = mixed(text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = mixed.convert_ids_to_tokens(encoded["input_ids"])
    starts = chinese_word_starts(text, encoded["offset_mapping"],
                                 continuation_tokens(mixed).numpy()[encoded["input_ids"]])
    assert any(t.startswith("##") for t in tokens)
    assert [s for t, s in zip(tokens, starts) if not is_cjk(t)] == [0 if t.startswith("##") else 1
                                                                    for t in tokens if not is_cjk(t)]
    assert starts[:2] == [1, 0]  # 宝玉: one word


def test_chinese_whole_word_masking_masks_jieba_words_whole_and_leaves_plain_blocks_as_they_were(hlm_corpus,
                                                                                                 tmp_path,
                                                                                                 monkeypatch):
    _, _, split, fingerprint, tokenizer = hlm_corpus
    monkeypatch.setattr(mlm_data, "PACK_BATCH_DOCS", 10)  # several batches, so 2 processes share the work
    plain, plain_eval, _ = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path / "plain", num_proc=1)
    words, words_eval, _ = packed_blocks(split, fingerprint, tokenizer, 64, tmp_path / "words", num_proc=2,
                                         chinese_words=True)
    # Off: the blocks and their cache entry's key are what they were before the option existed.
    pack = pack_function(tokenizer, 64)
    docs = split["train"]
    assert plain["input_ids"] == [ids for s in range(0, len(docs), 10) for ids in pack(docs[s:s + 10])["input_ids"]]
    assert plain.column_names == ["input_ids"]
    old_key = cache_key(fingerprint, tokenizer.backend_tokenizer.to_str(), 64)
    assert [p.name for p in (tmp_path / "plain").iterdir()] == [f"blocks-{old_key}"]
    # On: the same ids (in two processes as in one), plus the word starts; another cache entry.
    assert words["input_ids"] == plain["input_ids"] and words_eval["input_ids"] == plain_eval["input_ids"]
    assert (tmp_path / "words" / f"blocks-{old_key}").exists() is False
    assert len(json.loads(next((tmp_path / "words").glob("blocks-*/" + DONE)).read_text())["files"]["train"]) == 2

    collator = MaskingCollator(tokenizer, mlm_probability=0.3, seed=0)
    examples = [words[i] for i in range(len(words))]  # every training block (143)
    batch = collator(examples)
    masked = batch["labels"] != -100
    starts = torch.tensor([ex["word_start"] for ex in examples]).bool()
    original = torch.tensor([ex["input_ids"] for ex in examples])
    assert torch.equal(batch["labels"][masked], original[masked])
    whole = half = 0
    same_choice = chosen_words = 0
    for row in range(len(examples)):
        bounds = starts[row].nonzero().flatten().tolist() + [starts.shape[1]]
        for a, b in zip(bounds, bounds[1:]):
            word = masked[row, a:b]
            if b - a > 1 and word.any():
                whole += bool(word.all())
                half += not word.all()
            if word.all() and b - a > 1:  # 80/10/10 per word: all [MASK], or none
                chosen_words += 1
                is_mask = batch["input_ids"][row, a:b] == tokenizer.mask_token_id
                same_choice += bool(is_mask.all() or not is_mask.any())
    assert whole > 200 and half == 0  # every masked multi-character word is masked entirely
    assert same_choice >= 0.99 * chosen_words
    assert 0.22 < masked[~(original == tokenizer.cls_token_id) & ~(original == tokenizer.sep_token_id)
                         ].float().mean().item() < 0.38  # the masked share of tokens stays about 0.3

    # The fixed eval masks: by whole words too, and the word starts are not passed on to the model.
    held_out = collator.mask_once(words_eval, seed=1)
    assert held_out.column_names == ["input_ids", "labels"]


# --------------------------------------------------------------------------- pretrain, fill-mask, fine-tune


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    studio = Studio(tmp_path_factory.mktemp("chinese") / "workspace")
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def hlm_run(studio, tmp_path_factory):
    data = hongloumeng_slice(tmp_path_factory.mktemp("hlm_data") / "hongloumeng_slice.txt")
    corpus = studio.upload_corpus([data], "红楼梦 slice")
    run = studio.start_pretraining({**HLM_RUN, "corpus_id": corpus["corpus_id"]})
    status = wait_for(lambda: finished(studio, run["run_id"]), timeout=600, message="the Hongloumeng run")
    assert status["status"] == "completed", status["error"]
    return corpus, status


def test_pretrained_on_hongloumeng_fill_mask_answers_with_the_novels_characters(studio, hlm_run):
    corpus, status = hlm_run
    metrics = studio.run_metrics(status["run_id"])
    accuracy = [m["value"] for m in metrics if m["name"] == "eval_accuracy"]
    loss = [m["value"] for m in metrics if m["name"] == "eval_loss"]
    # It learnt from the novel (on tests/data's 59 paragraphs: accuracy 0.09, eval loss 7.25 -> 5.88 measured).
    assert accuracy[0] < 0.01 < 0.05 < accuracy[-1] and loss[-1] < loss[0] - 1.0
    # The novel's 30 most frequent characters: what a model that learnt the corpus answers first.
    text = "".join(load_corpus(studio.registry.get_corpus(corpus["corpus_id"])["path"])["text"])
    frequent = {ch for ch, _ in Counter(CJK_PATTERN.findall(text)).most_common(30)}
    answers = studio.fill_mask(status["run_id"], "贾宝[MASK]道：“你们不知道。”", top_k=10)[0]
    tokens = [a["token"] for a in answers]
    chinese = [t for t in tokens if is_cjk(t)]
    assert len(chinese) >= 5, tokens  # Chinese characters (beside the novel's punctuation), no pieces or [UNK]
    # From the trained model: its Chinese answers are the novel's frequent characters (an untrained model
    # answers random entries of its 3,000-token vocabulary).
    assert sum(t in frequent for t in chinese) >= 0.8 * len(chinese), (tokens, frequent)
    assert answers[0]["sequence"].replace(" ", "").startswith("贾宝" + tokens[0])

    report = studio.tokenizer_report({**HLM_RUN, "corpus_id": corpus["corpus_id"]})
    assert report["cjk_share"] > 0.75 and report["unknown_character_rate"] < 0.01
    stats = studio.get_corpus(corpus["corpus_id"])["stats"]
    assert stats["cjk_share"] > 0.75 and stats["distinct_characters"] > 1000


def test_a_run_with_chinese_whole_word_masking_trains(studio, hlm_run):
    corpus, _ = hlm_run
    run = studio.start_pretraining({**HLM_RUN, "corpus_id": corpus["corpus_id"], "max_steps": 6, "eval_steps": 3,
                                    "chinese_whole_word_mask": True})
    status = wait_for(lambda: finished(studio, run["run_id"]), timeout=300, message="the whole-word run")
    assert status["status"] == "completed", status["error"]
    assert status["config"]["chinese_whole_word_mask"] is True
    assert "with jieba word starts" in (studio.workspace.run_dir(run["run_id"]) / "train.log").read_text()
    assert len([m for m in studio.run_metrics(run["run_id"]) if m["name"] == "eval_loss"]) >= 2


@pytest.fixture(scope="module")
def sentiment(studio, hlm_run, tmp_path_factory):
    _, pretrained = hlm_run
    train, dev = NOVELS_ZH["train"], NOVELS_ZH["dev"]  # text,label: 50 / 15 windows of 60 characters a novel
    dataset = studio.upload_dataset("三部小说", train, "text", "label", validation_file=dev)
    run = studio.start_finetuning({**FINETUNE_RUN, "dataset_id": dataset["dataset_id"],
                                   "base_model": pretrained["run_id"]})
    status = wait_for(lambda: finished(studio, run["run_id"]), timeout=600, message="the novels run")
    assert status["status"] == "completed", status["error"]
    return dataset, dev, status


def test_fine_tuned_on_three_novels_it_classifies_chinese_texts_with_chinese_labels(studio, sentiment):
    dataset, dev, status = sentiment
    assert sorted(dataset["labels"]) == sorted(LABEL_NAMES)
    metrics = status["test_metrics"]
    print(f"novels_zh dev accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['f1']:.4f} "
          f"(majority {status['baselines']['majority']['accuracy']:.4f})")
    assert status["info"]["score_split"] == "validation" and metrics["examples"] == 45
    assert sorted(metrics["labels"]) == sorted(LABEL_NAMES)
    assert np.asarray(metrics["confusion_matrix"]).sum() == 45
    assert metrics["accuracy"] > 0.6  # above the majority class's 1/3 (0.87 measured)

    result = studio.classify(status["run_id"], "行者笑道：“师父放心，等老孙去看看那妖精。”")
    # Only the names are asserted: a tiny model's answer on one sentence is too close to call.
    assert set(result["scores"]) == set(LABEL_NAMES) and result["label"] in LABEL_NAMES
    assert result["scores"][result["label"]] == max(result["scores"].values())

    # The predictions CSV: plain UTF-8 (the API's format), Chinese texts and labels intact.
    predicted = studio.predict_file(status["run_id"], dev, "text", "label")
    raw = open(predicted["file"], "rb").read()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    with open(dev, encoding="utf-8", newline="") as fh:
        gold = list(csv.DictReader(fh))
    assert [(r["text"], r["label"]) for r in gold] == [(r["text"], r["label"]) for r in rows]
    assert {r["predicted"] for r in rows} <= set(LABEL_NAMES)
    assert {f"p_{name}" for name in LABEL_NAMES} <= set(rows[0])
    assert sorted(predicted["metrics"]["labels"]) == sorted(LABEL_NAMES)
    assert predicted["metrics"]["accuracy"] == pytest.approx(
        sum(r["predicted"] == r["label"] for r in rows) / len(rows))


def test_chinese_label_names_reach_the_export_and_the_charts(studio, sentiment):
    from pretrain_studio.ui.plots import confusion_figure, label_distribution_figure

    dataset, _, status = sentiment
    with zipfile.ZipFile(studio.export_run(status["run_id"])) as archive:
        names = archive.namelist()
        saved = json.loads(archive.read(next(n for n in names if n.endswith("/model/studio_model.json"))))
        config = json.loads(archive.read(next(n for n in names if n.endswith("/model/config.json"))))
    assert sorted(saved["id2label"].values()) == sorted(config["id2label"].values()) == sorted(LABEL_NAMES)

    metrics = status["test_metrics"]
    heatmap = confusion_figure(metrics["confusion_matrix"], metrics["labels"]).data[0]
    assert list(heatmap.x) == list(heatmap.y) == metrics["labels"]
    bars = label_distribution_figure(dataset["counts"]).data
    assert all(set(bar.x) == set(LABEL_NAMES) for bar in bars)

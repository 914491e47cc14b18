"""The schedule levers: short sequences first (seq_length_warmup) and a batch-size ramp (batch_size_warmup).

Unit checks of the batch shapes the collator gets, then one real pretraining run on the sample corpus with both
levers on: it learns, its log says what it did, and it trained on fewer tokens than its nominal batches hold.
"""

from __future__ import annotations

import pytest
from conftest import wait_for

from pretrain_studio.config import ConfigError, PretrainConfig
from pretrain_studio.training.curriculum import BATCH_RAMP_START, SHORT_PIECES, Curriculum

CLS, SEP = 2, 3


def block(n: int = 66, start: int = 10) -> dict:
    return {"input_ids": [CLS, *range(start, start + n - 2), SEP]}


def test_short_pieces_keep_the_tokens_in_order_each_framed_by_cls_and_sep():
    curriculum = Curriculum(0.5, 0.0, CLS, SEP)
    pieces = curriculum.shape_batch([block(), block(start=100)])
    assert len(pieces) == 2 * SHORT_PIECES
    body = 64 // SHORT_PIECES
    for piece in pieces:
        ids = piece["input_ids"]
        assert ids[0] == CLS and ids[-1] == SEP and len(ids) == body + 2
    # The pieces of one block, put back together, are that block's body.
    assert [t for p in pieces[:SHORT_PIECES] for t in p["input_ids"][1:-1]] == list(range(10, 74))


def test_short_pieces_carry_chinese_word_starts_and_each_piece_starts_a_word():
    example = {**block(), "word_start": [1] + [0] * 64 + [1]}
    pieces = Curriculum(1.0, 0.0, CLS, SEP).pieces(example)
    for piece in pieces:
        assert len(piece["word_start"]) == len(piece["input_ids"])
        assert piece["word_start"][:2] == [1, 1] and piece["word_start"][-1] == 1


def test_the_warm_up_ends_at_its_share_of_the_run():
    curriculum = Curriculum(0.25, 0.5, CLS, SEP)
    curriculum._max_steps = 100
    shares = []
    for step in (0, 20, 30, 50, 90):
        curriculum._update(step)
        shares.append((curriculum.short_sequences(), round(curriculum.batch_share(), 3)))
    assert shares[0] == (True, BATCH_RAMP_START)
    assert shares[1][0] is True and shares[2][0] is False  # short pieces until 25% of the run
    assert shares[0][1] < shares[1][1] < shares[2][1] < 1.0  # the batch grows ...
    assert shares[3][1] == shares[4][1] == 1.0  # ... to all of batch_size at 50%
    batch = curriculum.shape_batch([block() for _ in range(16)])
    assert len(batch) == 16  # at the end: the whole batch, full blocks


def test_a_time_budget_drives_the_levers_by_the_clock():
    class Clock:
        spent = 0.1

        def fraction(self):
            return self.spent

    clock = Clock()
    curriculum = Curriculum(0.2, 0.0, CLS, SEP, clock=clock)
    curriculum._update(10 ** 6)  # the step count does not matter when a budget runs the schedule
    assert curriculum.short_sequences()
    clock.spent = 0.3
    curriculum._update(0)
    assert not curriculum.short_sequences()


@pytest.mark.parametrize("field_name", ["seq_length_warmup", "batch_size_warmup"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused_naming_the_field(field_name, value):
    with pytest.raises(ConfigError) as error:
        PretrainConfig(corpus_id="c", **{field_name: value}).validate()
    assert error.value.field == field_name


def test_a_run_with_both_levers_learns_and_says_what_it_did(tmp_path):
    from pretrain_studio.studio import Studio

    studio = Studio(tmp_path / "workspace")
    try:
        corpus = next(c for c in studio.list_corpora() if c["name"].startswith("Sample"))["corpus_id"]
        settings = {"corpus_id": corpus, "model_size": "tiny", "vocab_size": 1500, "batch_size": 16,
                    "max_seq_length": 64, "learning_rate": 2e-3, "warmup_steps": 5, "max_steps": 60,
                    "eval_steps": 20, "logging_steps": 10, "save_steps": 1000, "seed": 1,
                    "seq_length_warmup": 0.5, "batch_size_warmup": 0.5}
        run_id = studio.start_pretraining(settings)["run_id"]
        run = wait_for(lambda: (lambda r: r if r["status"] not in ("queued", "running") else None)(
            studio.registry.get_run(run_id)), timeout=600, message="the curriculum run to end")
        assert run["status"] == "completed", run["error"]
        evals = [m["value"] for m in studio.registry.metrics_since(run_id) if m["name"] == "eval_loss"]
        assert evals[-1] < evals[0] - 0.5  # it learned, on full-length held-out blocks
        log = (studio.workspace.run_dir(run_id) / "train.log").read_text(encoding="utf-8")
        assert "curriculum: blocks in 4 short pieces for the first 50% of the steps" in log
        assert "the batch growing from 25% of 16" in log
        nominal = 60 * 16 * 64
        assert 0.5 * nominal < run["info"]["trained_tokens"] < 0.9 * nominal  # the ramp's small batches
    finally:
        studio.close()

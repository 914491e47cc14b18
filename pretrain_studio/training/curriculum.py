"""Cheap steps first: the sequence-length warm-up and the batch-size ramp, two pretraining schedule levers.

Both follow the run's progress, the share of the time budget spent (time_budget.py) or of the steps done:

- `seq_length_warmup` (a share of the run, 0 = off): for that first part, each packed block of max_seq_length
  tokens is cut into SHORT_PIECES pieces, each framed again by [CLS] ... [SEP] (Li et al. 2022, "The
  Stability-Efficiency Dilemma"; BERT itself trained 90% of its steps at 128 tokens before 512). A step sees the
  same tokens, with attention over a quarter of the context: cheaper attention, and an easier task first.
- `batch_size_warmup` (a share of the run, 0 = off): the batch grows linearly from BATCH_RAMP_START of
  batch_size to all of it over that part (Cramming, Geiping & Goldstein 2022; GPT-3's batch ramp): more, smaller
  updates while the model is far from any minimum. The blocks a small batch leaves out are skipped in this pass
  over the corpus, not trained twice.

The collator applies them (`Curriculum.shape_batch`), a callback moves them along with the run. Whether they pay
is measured downstream in bench/quality_per_hour.py; the README's performance section has the figures.
"""

from __future__ import annotations

from transformers import TrainerCallback

SHORT_PIECES = 4  # a block of 128 tokens trains as 4 pieces of 32 (+ [CLS], [SEP]) during the warm-up
BATCH_RAMP_START = 0.25  # share of batch_size the ramp starts from


class Curriculum(TrainerCallback):
    """Where the run is (0..1) and what that means for the next batch's shape."""

    def __init__(self, seq_length_warmup: float, batch_size_warmup: float, cls_id: int, sep_id: int,
                 clock=None, world_size: int = 1):
        self.seq_length_warmup = seq_length_warmup
        self.batch_size_warmup = batch_size_warmup
        self.cls_id, self.sep_id = cls_id, sep_id
        self.clock = clock  # a TimeBudget: progress by the clock; None: by steps
        self.world_size = world_size
        self.progress = 0.0
        self.tokens = 0  # training tokens fed, this process
        self._max_steps = 0

    @property
    def active(self) -> bool:
        return bool(self.seq_length_warmup or self.batch_size_warmup)

    def on_train_begin(self, args, state, control, **kwargs):
        self._max_steps = state.max_steps
        self._update(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._update(state.global_step)

    def _update(self, step: int) -> None:
        if self.clock is not None:
            self.progress = self.clock.fraction()
        elif self._max_steps:
            self.progress = min(1.0, step / self._max_steps)

    def batch_share(self) -> float:
        """Share of batch_size the next batch uses."""
        if not self.batch_size_warmup or self.progress >= self.batch_size_warmup:
            return 1.0
        return BATCH_RAMP_START + (1 - BATCH_RAMP_START) * self.progress / self.batch_size_warmup

    def short_sequences(self) -> bool:
        return self.progress < self.seq_length_warmup

    def shape_batch(self, examples: list[dict]) -> list[dict]:
        """The next training batch, cut to the ramp's size and into short pieces during the warm-up."""
        examples = examples[:max(1, round(len(examples) * self.batch_share()))]
        if self.short_sequences():
            examples = [piece for example in examples for piece in self.pieces(example)]
        self.tokens += sum(len(example["input_ids"]) for example in examples)
        return examples

    def pieces(self, example: dict) -> list[dict]:
        """A packed block [CLS] body [SEP] as SHORT_PIECES blocks [CLS] part [SEP] (a few tail tokens dropped)."""
        ids = example["input_ids"]
        size = (len(ids) - 2) // SHORT_PIECES
        if size < 1:
            return [example]
        out = []
        for i in range(SHORT_PIECES):
            cut = slice(1 + i * size, 1 + (i + 1) * size)
            piece = {"input_ids": [self.cls_id, *ids[cut], self.sep_id]}
            if "word_start" in example:  # Chinese whole-word masking: a piece's first token starts a word
                piece["word_start"] = [1, 1, *example["word_start"][cut][1:], 1]
            out.append(piece)
        return out

    def tokens_per_step(self, nominal: int) -> float:
        """Tokens an optimizer step trains on now (all processes), for the throughput line: the ramp's share of
        the nominal batch (short pieces carry about the same tokens as the block they came from)."""
        return nominal * self.batch_share()

    def trained_tokens(self) -> int:
        return self.tokens * self.world_size

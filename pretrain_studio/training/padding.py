"""How much of each batch is padding: a collator wrapper that counts it.

Fine-tuning pads every batch to its longest text (dynamic padding). With
texts of mixed lengths in random order that wastes a third of the compute or
more; batches of similar lengths (`group_by_length`) waste little. The meter
makes that visible: the run records its training padding share.
"""

from __future__ import annotations

from collections.abc import Callable


class PaddingMeter:
    """Wraps a collator; counts real and padding positions of the batches it builds while `counting()`."""

    def __init__(self, collator, counting: Callable[[], bool] = lambda: True):
        self.collator = collator
        self.counting = counting
        self.positions = 0
        self.padding = 0

    def __call__(self, features):
        batch = self.collator(features)
        if self.counting():
            ids = batch["input_ids"]
            mask = batch.get("attention_mask")
            real = int(mask.sum()) if mask is not None else ids.numel()
            self.positions += ids.numel()
            self.padding += ids.numel() - real
        return batch

    @property
    def padding_share(self) -> float:
        return self.padding / self.positions if self.positions else 0.0

"""How a classifier turns token states into one vector: `[CLS]` (BERT's pooler) or the mean of the tokens.

A model pretrained here with MLM alone never trains its `[CLS]` state to summarise the text (there is no
next-sentence task), and its pooler is freshly initialised at fine-tuning time. Classifying from that state
is what left every default fine-tune of the quick start at the majority class, while a logistic regression on
the *mean* of the same frozen token states reached 0.75 (bench/quality_per_hour.py measures both). Mean pooling
gives the classifier that signal from step one.

`pooling="mean"` keeps the model a standard `BertForSequenceClassification`: its pooler is swapped for
`MeanPooler`, which has the same parameters (`pooler.dense`), so checkpoints, peft adapters and saved folders
keep their usual layout, and only the pooler's input changes (the padding-masked mean of the last hidden states
instead of the first token's). The choice is recorded in the run's `studio_model.json` (`"pooling"`), and every
loader here applies it again; a folder without the key is `[CLS]`-pooled, as before this setting existed.

ModernBERT pools natively: `ModernBertForSequenceClassification` reads `config.classifier_pooling` ("cls" or
"mean", padding excluded) before its head. For it the setting is mapped onto that field, nothing is swapped, and a
full model's saved config.json carries it, so plain transformers loads it pooling the same way.
"""

from __future__ import annotations

import threading

import torch

from .config import POOLINGS


class _MaskHolder:
    """The attention mask of the forward pass in progress, per thread (the app serves predictions from several
    threads with one cached model). Shared, not copied, by the deep copies peft makes of the pooler
    (`modules_to_save`), so every copy sees the mask of its own call."""

    def __init__(self):
        self.local = threading.local()

    def __deepcopy__(self, memo):
        return self

    @property
    def mask(self):
        return getattr(self.local, "mask", None)

    @mask.setter
    def mask(self, value):
        self.local.mask = value


class MeanPooler(torch.nn.Module):
    """BERT's pooler (dense + tanh) applied to the mean of the token states, padding excluded."""

    def __init__(self, pooler: torch.nn.Module, holder: _MaskHolder):
        super().__init__()
        self.dense = pooler.dense
        self.activation = pooler.activation
        self.holder = holder

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        mask = self.holder.mask
        if mask is None or tuple(mask.shape) != tuple(hidden_states.shape[:2]):
            pooled = hidden_states.mean(dim=1)  # called without a mask: no padding to leave out
        else:
            weights = mask.unsqueeze(-1).to(hidden_states.dtype)
            pooled = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        return self.activation(self.dense(pooled))


def native_pooling(model: torch.nn.Module) -> bool:
    """Whether the classifier pools as its config says (ModernBERT's `classifier_pooling`)."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", "") == "modernbert" and hasattr(config, "classifier_pooling")


def apply_pooling(model: torch.nn.Module, pooling: str) -> torch.nn.Module:
    """Make a freshly loaded sequence classifier pool as `pooling` says (before peft or adapters wrap it).
    A model without a BERT-style pooler is left as it is when `pooling` is "cls", refused otherwise."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    if native_pooling(model):
        model.config.classifier_pooling = pooling
        return model
    if pooling == "cls":
        return model
    encoder = getattr(model, getattr(model, "base_model_prefix", ""), None)
    pooler = getattr(encoder, "pooler", None)
    if encoder is None or pooler is None or not hasattr(pooler, "dense"):
        raise ValueError(f"{type(model).__name__} has no BERT-style pooler for mean pooling; use pooling=cls")
    if isinstance(pooler, MeanPooler):
        return model
    holder = _MaskHolder()
    encoder.pooler = MeanPooler(pooler, holder)

    def remember_mask(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:
            mask = args[1]
        holder.mask = mask

    encoder.register_forward_pre_hook(remember_mask, with_kwargs=True)
    return model

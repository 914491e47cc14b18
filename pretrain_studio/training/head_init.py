"""LP-FT: start fine-tuning from the linear probe instead of a random head (Kumar et al. 2022).

A freshly initialised head sends random gradients into the encoder for the first steps and, on a small
dataset, a short run may end before the head has found the classes at all. Fitting a logistic regression on
the frozen encoder's pooled features first (the same probe the run page shows as a baseline) and copying it
into the head makes step 0 as good as the probe; fine-tuning then starts from there.

The pooler (dense + tanh) is set to the identity first, so the probe is fitted on exactly what the head will
see at step 0: tanh of the pooled token states (their mean, or [CLS]'s; see pooling.py).

ModernBERT's classifier reads its own head instead of a pooler: the pooled states (config.classifier_pooling)
through dense + GELU + norm. That head comes with the pretrained model (the MLM head's transform has the same
names), so it is kept as it is, and the probe is fitted on its output, which is again exactly what the
`classifier` reads at step 0.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ..pooling import native_pooling
from .classification_metrics import PROBE_MAX_TRAIN


@torch.no_grad()
def pooled_features(model, tokenizer, texts: list[str], pairs: list[str] | None, max_length: int,
                    batch_size: int = 64) -> np.ndarray:
    """What the classification head reads (the pooler's output; ModernBERT: its head's), for a list of texts,
    in eval mode."""
    encoder = getattr(model, model.base_model_prefix)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        second = pairs[start:start + batch_size] if pairs else None
        batch = tokenizer(texts[start:start + batch_size], second, truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        if native_pooling(model):
            chunks.append(model.head(pool_states(model, encoder(**batch).last_hidden_state,
                                                 batch["attention_mask"])).float().cpu().numpy())
        else:
            chunks.append(encoder(**batch).pooler_output.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(chunks)


def pool_states(model, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ModernBERT's pooling of the last hidden states, as ModernBertForSequenceClassification does it."""
    if model.config.classifier_pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    return hidden[:, 0]


@torch.no_grad()
def init_head_from_probe(model, tokenizer, texts: list[str], pairs: list[str] | None, labels: list[int],
                         max_length: int, seed: int) -> float:
    """Set the pooler to the identity and the head to a logistic regression fitted on the training texts
    (at most PROBE_MAX_TRAIN of them). Returns the probe's accuracy on those texts. Call before peft or
    adapters wrap the model. ModernBERT: its head (dense + GELU + norm) is kept, the probe is fitted on its output.
    Leaves a model without a BERT-style pooler and head untouched (returns nan)."""
    encoder = getattr(model, getattr(model, "base_model_prefix", ""), None)
    pooler, head = getattr(encoder, "pooler", None), getattr(model, "classifier", None)
    native = native_pooling(model) and isinstance(getattr(model, "head", None), torch.nn.Module)
    if not native and (pooler is None or not hasattr(pooler, "dense")) or not isinstance(head, torch.nn.Linear):
        return float("nan")
    if len(texts) > PROBE_MAX_TRAIN:
        pick = np.random.default_rng(seed).choice(len(texts), PROBE_MAX_TRAIN, replace=False)
        texts = [texts[i] for i in pick]
        pairs = [pairs[i] for i in pick] if pairs else None
        labels = [labels[i] for i in pick]
    if not native:
        hidden = pooler.dense.weight.shape[0]
        pooler.dense.weight.copy_(torch.eye(hidden, dtype=pooler.dense.weight.dtype))
        pooler.dense.bias.zero_()
    features = pooled_features(model, tokenizer, texts, pairs, max_length)
    probe = LogisticRegression(max_iter=2000, random_state=seed).fit(features, labels)
    weight = torch.zeros_like(head.weight)
    bias = torch.zeros(head.out_features, dtype=weight.dtype, device=weight.device)
    coef = torch.tensor(probe.coef_, dtype=weight.dtype)
    intercept = torch.tensor(probe.intercept_, dtype=bias.dtype)
    classes = [int(c) for c in probe.classes_]
    if len(classes) == 2 and coef.shape[0] == 1:
        # Binary: p(second class) = sigmoid(c.x + b); softmax over [-z/2, z/2] gives the same probability.
        weight[classes[0]], weight[classes[1]] = -coef[0] / 2, coef[0] / 2
        bias[classes[0]], bias[classes[1]] = -intercept[0] / 2, intercept[0] / 2
    else:
        for row, label in enumerate(classes):  # a label absent from training keeps a zero row
            weight[label], bias[label] = coef[row], intercept[row]
    head.weight.copy_(weight)
    if head.bias is not None:
        head.bias.copy_(bias)
    return float(probe.score(features, labels))

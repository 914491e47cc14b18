"""The per-token linear probe: a baseline for token classification, and (LP-FT) the head's starting point.

A logistic regression is fitted on what the untrained token classifier's `classifier` layer reads (the encoder's
last hidden state; ModernBERT: after its head), at each word's first sub-token, on a sample of the training
sentences. Its predictions on the scored split are the `linear_probe` baseline: what a frozen encoder knows
about entities without fine-tuning. With `head_init=linear_probe`, its weights become the head, so step 0
already tags like the probe.
"""

from __future__ import annotations

import numpy as np
import torch

from .token_alignment import encode_windows, word_scores

PROBE_SENTENCES = 2000  # training sentences the probe is fitted on (a sample, for speed)
_BATCH = 32


@torch.no_grad()
def word_features(model, tokenizer, sentences: list[list[str]], max_length: int) -> list[np.ndarray]:
    """Per sentence, a (words, features) array: the classifier's input at each word's first sub-token."""
    windows = encode_windows(tokenizer, sentences, None, max_length)
    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_pre_hook(lambda module, args: captured.append(args[0].float().cpu()))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(windows["input_ids"])), key=lambda i: len(windows["input_ids"][i]))
    features: list[np.ndarray | None] = [None] * len(order)
    try:
        for start in range(0, len(order), _BATCH):
            chosen = order[start:start + _BATCH]
            batch = tokenizer.pad({"input_ids": [windows["input_ids"][i] for i in chosen],
                                   "attention_mask": [windows["attention_mask"][i] for i in chosen]},
                                  return_tensors="pt")
            captured.clear()
            model(**{k: v.to(device) for k, v in batch.items()})
            for row, i in enumerate(chosen):
                features[i] = captured[0][row, :len(windows["input_ids"][i])].numpy()
    finally:
        hook.remove()
        model.train(was_training)
    return word_scores(windows, features, [len(s) for s in sentences])


def fit_probe(model, tokenizer, sentences: list[list[str]], tags: list[list[int]], max_length: int, seed: int):
    """The logistic regression on a sample of the training sentences' word features."""
    from sklearn.linear_model import LogisticRegression

    if len(sentences) > PROBE_SENTENCES:
        pick = sorted(np.random.default_rng(seed).choice(len(sentences), PROBE_SENTENCES, replace=False))
        sentences, tags = [sentences[i] for i in pick], [tags[i] for i in pick]
    features = np.concatenate(word_features(model, tokenizer, sentences, max_length))
    labels = np.concatenate([np.asarray(t) for t in tags])
    return LogisticRegression(max_iter=300, random_state=seed).fit(features, labels)


def probe_predict(probe, model, tokenizer, sentences: list[list[str]], max_length: int) -> list[list[int]]:
    features = word_features(model, tokenizer, sentences, max_length)
    return [probe.predict(f).tolist() if len(f) else [] for f in features]


@torch.no_grad()
def init_token_head(model, probe) -> None:
    """Copy the probe into the classifier; a tag the sample never had gets a bias below every other."""
    head = model.classifier
    weight = torch.zeros_like(head.weight)
    bias = torch.full((head.out_features,), float(np.min(probe.intercept_)) - 5.0, dtype=weight.dtype)
    classes = [int(c) for c in probe.classes_]
    coef = torch.tensor(probe.coef_, dtype=weight.dtype)
    intercept = torch.tensor(probe.intercept_, dtype=weight.dtype)
    if len(classes) == 2 and coef.shape[0] == 1:
        weight[classes[0]], weight[classes[1]] = -coef[0] / 2, coef[0] / 2
        bias[classes[0]], bias[classes[1]] = -intercept[0] / 2, intercept[0] / 2
    else:
        for row, label in enumerate(classes):
            weight[label], bias[label] = coef[row], intercept[row]
    head.weight.copy_(weight)
    if head.bias is not None:
        head.bias.copy_(bias.to(head.bias.device))

"""What fine-tuning bought: classification metrics, and two baselines on the same split.

`classification_report` gives accuracy, macro-F1, per-class precision and
recall and the confusion matrix (scikit-learn). The baselines are the
majority class and a linear probe: logistic regression on the frozen base
model's mean-pooled embeddings. A fine-tuned model that does not beat both
has not learned much.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

PROBE_MAX_TRAIN = 4000  # training examples embedded for the linear probe: enough for a stable probe on a CPU


def accuracy_and_f1(eval_pred) -> dict:
    """Trainer compute_metrics: accuracy and macro-F1 (logged as eval_accuracy, eval_f1)."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    predictions = np.asarray(logits).argmax(-1)
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "f1": float(f1_score(labels, predictions, average="macro", zero_division=0))}


def classification_report(labels, predictions, names: list[str]) -> dict:
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=ids, zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(names)},
        "confusion_matrix": confusion_matrix(labels, predictions, labels=ids).tolist(),
        "labels": list(names),
        "examples": int(len(labels)),
    }


def majority_baseline(train_labels, eval_labels, names: list[str]) -> dict:
    majority = int(np.bincount(np.asarray(train_labels), minlength=len(names)).argmax())
    report = classification_report(eval_labels, [majority] * len(eval_labels), names)
    report["predicts"] = names[majority]
    return report


@torch.inference_mode()
def embed(encoder, tokenizer, texts: list[str], pairs: list[str] | None, max_length: int,
          batch_size: int = 64) -> np.ndarray:
    """Mean-pooled last hidden states (padding excluded)."""
    device = next(encoder.parameters()).device
    chunks = []
    for start in range(0, len(texts), batch_size):
        second = pairs[start:start + batch_size] if pairs else None
        encoded = tokenizer(texts[start:start + batch_size], second, truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt").to(device)
        hidden = encoder(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 1))


def linear_probe_baseline(encoder, tokenizer, train, evaluation, names: list[str], max_length: int,
                          seed: int) -> dict:
    """Logistic regression on frozen embeddings; `train`/`evaluation` are (texts, pairs, labels)."""
    texts, pairs, labels = train
    if len(texts) > PROBE_MAX_TRAIN:
        pick = np.random.default_rng(seed).choice(len(texts), PROBE_MAX_TRAIN, replace=False)
        texts = [texts[i] for i in pick]
        pairs = [pairs[i] for i in pick] if pairs else None
        labels = [labels[i] for i in pick]
    encoder.eval()
    train_x = embed(encoder, tokenizer, texts, pairs, max_length)
    eval_x = embed(encoder, tokenizer, evaluation[0], evaluation[1], max_length)
    probe = LogisticRegression(max_iter=2000, random_state=seed)
    probe.fit(train_x, labels)
    report = classification_report(evaluation[2], probe.predict(eval_x), names)
    report["train_examples"] = len(texts)
    return report

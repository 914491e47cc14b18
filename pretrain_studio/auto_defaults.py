"""What the studio trains with when a setting says 0 = auto: the measured learning rates and epochs.

Each figure here comes from a bench in `bench/` (its comment says which); config.py's
`effective_learning_rate()` and `effective_epochs()` ask here.
"""

from __future__ import annotations

import math

# learning_rate = 0 in pretraining (bench/quality_per_hour.py, README "Quality per hour"). From scratch at the tiny
# shape 1e-3 beat the former default 5e-4 for both architectures (2 minutes: ModernBERT 1.48 against 0.99 nats
# below the no-context line, BERT 0.57 against 0.41), and 2e-3 gave BERT nothing more and ModernBERT a worse
# fine-tune. Sizes above mini keep 5e-4, which is not measured here: the post-norm BERT is known to diverge at
# large rates as it deepens (Liu et al. 2020). Continuing a pretrained encoder takes small steps so as not to
# overwrite what it knows: all-MiniLM-L6-v2 continued at 1e-4 on a task's texts fine-tuned better on both tasks.
PRETRAIN_LEARNING_RATES = {"tiny": 1e-3, "mini": 1e-3, "small": 5e-4, "medium": 5e-4, "base": 5e-4}
CONTINUED_PRETRAIN_LEARNING_RATE = 1e-4


def auto_pretrain_learning_rate(model_size: str, *, continued: bool) -> float:
    """Pretraining's default peak rate for a model from scratch of this size preset, or for continuing one."""
    return CONTINUED_PRETRAIN_LEARNING_RATE if continued else PRETRAIN_LEARNING_RATES[model_size]


# Learning rates that work for BERT-base-sized encoders (hidden size 768) per method: full fine-tuning wants small
# steps; the few parameters of LoRA, IA3 and adapters want larger ones. learning_rate = 0 scales them to the base
# model's width (auto_learning_rate): compact models want much larger steps.
METHOD_LEARNING_RATES = {"full": 5e-5, "top_layers": 1e-4, "lora": 5e-4, "adalora": 1e-3, "ia3": 3e-3,
                         "adapter": 1e-3}
RATE_SCALE_EXPONENT = 1.5  # rate x (768 / hidden) ** 1.5: tiny (128) x14.7, mini (256) x5.2, MiniLM (384) x2.8
MAX_AUTO_LEARNING_RATE = {"full": 1e-3, "top_layers": 2e-3, "lora": 5e-3, "adalora": 5e-3, "ia3": 1e-2,
                          "adapter": 5e-3}
AUTO_EPOCHS = (3, 10, 300)  # num_epochs = 0: at least 3 and at most 10 epochs, aiming at 300 optimizer steps


def auto_learning_rate(method: str, hidden_size: int | None) -> float:
    """The default peak learning rate for `method` on a base model of this width (bench/quality_per_hour.py:
    on the quick start's tiny model, full fine-tuning at BERT-base's 5e-5 stays at the majority class, at 1e-3
    it beats the linear probe)."""
    rate = METHOD_LEARNING_RATES[method]
    if hidden_size:
        rate *= (768 / hidden_size) ** RATE_SCALE_EXPONENT
    return float(min(rate, MAX_AUTO_LEARNING_RATE[method]) if hidden_size and hidden_size < 768 else rate)


def auto_epochs(train_rows: int, batch_size: int) -> float:
    """num_epochs = 0: enough passes over a small dataset for about 300 steps, 3 over a large one."""
    low, high, target_steps = AUTO_EPOCHS
    steps_per_epoch = max(1, math.ceil(train_rows / batch_size))
    return float(min(high, max(low, math.ceil(target_steps / steps_per_epoch))))

"""The verdict on a fine-tuning run: did it beat the majority class and the linear probe, and if not, what helps.

A fine-tuned model that scores no better than always answering the most frequent class, or than a logistic
regression on the frozen features of its own base model, has not learned what fine-tuning is for. The run page,
the runs table and the API say so (`info["verdict"]`), with the advice that usually fixes it, rather than
leaving the user to compare three numbers.
"""

from __future__ import annotations

# A run must beat a baseline by more than this (accuracy) to count as above it: one or two lucky examples on a
# small split are not a win.
MARGIN = 0.01
SMALL_HIDDEN = 384  # hidden size up to which an adapter method has few parameters to learn with


def fine_tuning_verdict(score: float, majority: float, probe: float, *, method: str, learning_rate: float,
                        steps: int, hidden_size: int | None, pooling: str = "mean",
                        head_init: str = "linear_probe") -> dict:
    """{"above_majority", "above_linear_probe", "advice"}; the advice is empty when both hold."""
    above_majority = score > majority + MARGIN
    above_probe = score > probe + MARGIN
    advice = []
    if not above_majority:
        advice.append(f"the model scores no better than always answering the most frequent class "
                      f"({majority:.3f}): it has not learned the task yet")
    elif not above_probe:
        advice.append(f"a logistic regression on the frozen base model's features scores {probe:.3f}, "
                      f"at least as well as this fine-tune ({score:.3f})")
    if advice:
        advice.append(f"train longer (this run took {steps} steps), or raise the learning rate "
                      f"(it was {learning_rate:g})")
        if method not in ("full", "top_layers") and (hidden_size or 0) <= SMALL_HIDDEN:
            advice.append("a model this small learns more with full fine-tuning than with an adapter")
        if pooling != "mean":
            advice.append("classify from the mean of the token states (pooling=mean)")
        if head_init != "linear_probe":
            advice.append("start the head from the linear probe (head_init=linear_probe)")
    return {"above_majority": above_majority, "above_linear_probe": above_probe,
            "advice": "; ".join(advice) + ("." if advice else "")}


def entity_verdict(f1: float, memorise: float, probe: float, *, method: str, learning_rate: float, steps: int,
                   hidden_size: int | None) -> dict:
    """The same verdict for a token classifier: its entity F1 against memorising the training entities and
    against the per-token probe. `above_majority` repeats `above_memorise` for the views shared with text
    classification."""
    above_memorise = f1 > memorise + MARGIN
    above_probe = f1 > probe + MARGIN
    advice = []
    if not above_memorise:
        advice.append(f"the model finds entities no better than tagging every entity seen in training wherever it "
                      f"occurs (entity F1 {memorise:.3f}): it has not learned to generalise yet")
    elif not above_probe:
        advice.append(f"a per-token logistic regression on the frozen base model's features scores {probe:.3f}, "
                      f"at least as well as this fine-tune ({f1:.3f})")
    if advice:
        advice.append(f"train longer (this run took {steps} steps), or raise the learning rate "
                      f"(it was {learning_rate:g})")
        if method not in ("full", "top_layers") and (hidden_size or 0) <= SMALL_HIDDEN:
            advice.append("a model this small learns more with full fine-tuning than with an adapter")
    return {"above_memorise": above_memorise, "above_majority": above_memorise, "above_linear_probe": above_probe,
            "advice": "; ".join(advice) + ("." if advice else "")}

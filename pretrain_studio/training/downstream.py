"""The downstream check: how well the model being pretrained fine-tunes, measured while it trains.

A falling MLM loss does not say whether the encoder is any use: a model that has learned word frequencies
and little else fine-tunes *worse* than random weights. So a pretraining run may name labelled datasets as
downstream checks. At step 0 (the random-initialised model, or the base model when continuing) and then every
`downstream_eval_steps`, a copy of the encoder is fine-tuned briefly with one fixed recipe and scored on the
dataset's validation split; a linear probe on the frozen copy is scored beside it. Both become metrics of the
run (`downstream_accuracy/<dataset_id>`, `downstream_probe/<dataset_id>`), and the step-0 value is the
"no pretraining" line the later ones must beat.

The recipe (fixed, so that points of one curve compare): at most RECIPE["train_examples"] training and
RECIPE["eval_examples"] validation examples (a seeded sample, the same at every check), texts cut to
RECIPE["max_seq_length"] tokens; a mean-pooled classifier whose head starts from the linear probe (LP-FT);
full fine-tuning with AdamW, batch RECIPE["batch_size"], a learning rate chosen by the hidden size
(`small_model_learning_rate`), linear decay, for RECIPE["steps"] steps or RECIPE["seconds"] seconds, whichever
ends first. It runs between training steps in the training process (no second model on the device for long,
no process start-up), so training pauses while it runs: the run records the seconds it took
(`info["downstream_seconds"]`).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, TrainerCallback

from ..data.labelled import load_labelled
from ..pooling import apply_pooling
from .classification_metrics import linear_probe_baseline
from .head_init import init_head_from_probe

RECIPE = {"train_examples": 1000, "eval_examples": 500, "max_seq_length": 128, "batch_size": 16, "steps": 100,
          "seconds": 300.0}  # the seconds are a safety cap for a slow device, not part of the recipe
ACCURACY_PREFIX = "downstream_accuracy/"  # metric names of the run (issue 16's contract), + the dataset id
PROBE_PREFIX = "downstream_probe/"
PAID_OFF_MARGIN = 0.01  # accuracy above the step-0 value that counts as "paid off" (more than a lucky example)


def small_model_learning_rate(hidden_size: int) -> float:
    """Full fine-tuning's peak learning rate for an encoder of this width: BERT-base's 5e-5 at 768, growing as the
    model narrows (compact models want larger steps; Turc et al. 2019 searched up to 3e-4), at most 1e-3."""
    return float(min(1e-3, 5e-5 * (768 / max(hidden_size, 1)) ** 1.5))


class DownstreamTask:
    """One labelled dataset prepared for repeated checks: the sampled texts, tokenised once."""

    def __init__(self, dataset_id: str, path: str, tokenizer, seed: int):
        data = load_labelled(path)
        if "validation" not in data:
            raise ValueError(f"downstream dataset {dataset_id} has no validation split")
        self.dataset_id = dataset_id
        self.names = data["train"].features["label"].names
        self.tokenizer = tokenizer
        rng = np.random.default_rng(seed)
        self.train = self._columns(data["train"], RECIPE["train_examples"], rng)
        self.validation = self._columns(data["validation"], RECIPE["eval_examples"], rng)

    @staticmethod
    def _columns(split, limit: int, rng) -> tuple[list[str], list[str] | None, list[int]]:
        picked = np.arange(len(split))
        if len(picked) > limit:
            picked = np.sort(rng.choice(len(picked), limit, replace=False))
        rows = split.select(picked)
        pairs = list(rows["text_pair"]) if "text_pair" in rows.column_names else None
        return list(rows["text"]), pairs, list(rows["label"])

    def _batch(self, texts, pairs, start, size):
        second = pairs[start:start + size] if pairs else None
        return self.tokenizer(texts[start:start + size], second, truncation=True,
                              max_length=RECIPE["max_seq_length"], padding=True, return_tensors="pt")

    def check(self, encoder: torch.nn.Module, config, seed: int, head: torch.nn.Module | None = None) -> dict:
        """Fine-tune a copy of `encoder` (a BertModel-like module) and probe it: {"accuracy", "probe", "seconds"}.
        `head`: the MLM model's head where the classifier has one of the same shape (ModernBERT's dense + GELU +
        norm), copied in as loading the saved model for fine-tuning would."""
        started = time.time()
        device = next(encoder.parameters()).device
        torch.manual_seed(seed)
        config = copy.deepcopy(config)
        config.num_labels = len(self.names)
        model = AutoModelForSequenceClassification.from_config(config)
        body = getattr(model, model.base_model_prefix)
        body.load_state_dict(encoder.state_dict(), strict=False)  # the pooler is the classifier's own
        if head is not None and isinstance(getattr(model, "head", None), type(head)):
            model.head.load_state_dict(head.state_dict())
        model = apply_pooling(model.to(device), "mean")
        texts, pairs, labels = self.train
        probe = linear_probe_baseline(body, self.tokenizer, self.train, self.validation, self.names,
                                      RECIPE["max_seq_length"], seed)["accuracy"]
        init_head_from_probe(model, self.tokenizer, texts, pairs, labels, RECIPE["max_seq_length"], seed)

        # --- a short full fine-tune, time-boxed --------------------------------------------
        rate = small_model_learning_rate(config.hidden_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=0.01)
        steps = RECIPE["steps"]
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
        order = np.random.default_rng(seed)
        targets = torch.tensor(labels)
        model.train()
        step = 0
        while step < steps and time.time() - started < RECIPE["seconds"]:
            for start in range(0, len(texts), RECIPE["batch_size"]):
                if step >= steps or time.time() - started >= RECIPE["seconds"]:
                    break
                if start == 0:
                    permutation = order.permutation(len(texts))
                    texts = [texts[i] for i in permutation]
                    pairs = [pairs[i] for i in permutation] if pairs else None
                    targets = targets[permutation]
                batch = self._batch(texts, pairs, start, RECIPE["batch_size"]).to(device)
                loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(),
                                                         targets[start:start + RECIPE["batch_size"]].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                step += 1

        # --- score on the validation sample ----------------------------------------------------
        model.eval()
        v_texts, v_pairs, v_labels = self.validation
        correct = 0
        with torch.no_grad():
            for start in range(0, len(v_texts), 64):
                batch = self._batch(v_texts, v_pairs, start, 64).to(device)
                predicted = model(**batch).logits.argmax(-1).cpu()
                correct += int((predicted == torch.tensor(v_labels[start:start + 64])).sum())
        del model, optimizer
        return {"accuracy": correct / max(1, len(v_labels)), "probe": float(probe), "steps": step,
                "seconds": time.time() - started}


def summarise(points: list[tuple[int, float]]) -> dict:
    """{"start", "best", "final", "paid_off", ...} from a curve's (step, accuracy) points, step 0 first."""
    if not points:
        return {}
    start, final = points[0][1], points[-1][1]
    best_step, best = max(points, key=lambda point: point[1])
    return {"start": start, "best": best, "best_step": best_step, "final": final, "final_step": points[-1][0],
            "paid_off": final > start + PAID_OFF_MARGIN}


def encoder_of(mlm_model: torch.nn.Module) -> torch.nn.Module:
    """The encoder inside an MLM model (BertForMaskedLM.bert, ModernBertForMaskedLM.model, a DDP-wrapped one's
    module's)."""
    model = getattr(mlm_model, "module", mlm_model)
    return getattr(model, model.base_model_prefix)



class DownstreamCallback(TrainerCallback):
    """Runs the downstream checks at step 0, every `every` steps and at the end, and records them."""

    def __init__(self, tasks: list[DownstreamTask], reporter, every: int, seed: int, every_seconds: float = 0.0,
                 clock=None):
        self.tasks = tasks
        self.clock = clock  # a TimeBudget: the checks' seconds do not count against it
        self.reporter = reporter
        self.every = max(1, every)
        self.every_seconds = every_seconds
        self._next_time = None
        self.seed = seed
        self.points: dict[str, list[tuple[int, float]]] = {task.dataset_id: [] for task in tasks}
        self.seconds = 0.0
        self.last_step: int | None = None
        # A resumed run keeps the points recorded up to its checkpoint (the later ones were dropped on resume).
        for row in reporter.registry.metrics_since(reporter.run_id):
            name = row["name"]
            if name.startswith(ACCURACY_PREFIX) and name[len(ACCURACY_PREFIX):] in self.points:
                self.points[name[len(ACCURACY_PREFIX):]].append((row["step"], row["value"]))
                self.last_step = row["step"]

    def check(self, model: torch.nn.Module, step: int) -> None:
        if step == self.last_step:
            return
        self.last_step = step
        encoder, config = encoder_of(model), getattr(model, "module", model).config
        head = getattr(getattr(model, "module", model), "head", None)  # ModernBERT's MLM head transform
        was_training = model.training
        # The check seeds torch for its own fine-tune; training must go on with the random stream it had, so that
        # a run with checks trains exactly as one without them.
        rng = torch.random.get_rng_state()
        for task in self.tasks:
            result = task.check(encoder, config, self.seed, head=head)
            self.seconds += result["seconds"]
            if self.clock is not None:
                self.clock.exclude(result["seconds"])
            self.points[task.dataset_id].append((step, result["accuracy"]))
            self.reporter.metrics(step, {f"{ACCURACY_PREFIX}{task.dataset_id}": result["accuracy"],
                                         f"{PROBE_PREFIX}{task.dataset_id}": result["probe"]})
            self.reporter.log(f"downstream check on {task.dataset_id} at step {step}: accuracy "
                              f"{result['accuracy']:.4f}, linear probe {result['probe']:.4f} "
                              f"({result['steps']} steps, {result['seconds']:.1f} s)")
        model.train(was_training)
        torch.random.set_rng_state(rng)
        self.reporter.info(downstream={name: summarise(points) for name, points in self.points.items()},
                           downstream_seconds=self.seconds)

    def on_train_begin(self, args, state, control, **kwargs):
        self._next_time = time.time() + self.every_seconds if self.every_seconds else None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        if self.every_seconds:  # a run with a time budget and no step limit: checks spread over the budget
            if time.time() >= self._next_time:
                self.check(model, state.global_step)
                self._next_time = time.time() + self.every_seconds
        elif state.global_step % self.every == 0:
            self.check(model, state.global_step)



CHECKS_PER_RUN = 5  # with downstream_eval_steps = 0: checks spread over the run (plus step 0 and the end)


def check_interval(downstream_eval_steps: int, total_steps: int | None, budget_seconds: float) -> tuple[int, float]:
    """(steps, seconds) between checks: the setting; else five checks over the run's steps, or over its time
    budget when the budget is its only limit."""
    if downstream_eval_steps:
        return downstream_eval_steps, 0.0
    if total_steps:
        return max(1, math.ceil(total_steps / CHECKS_PER_RUN)), 0.0
    return 1, budget_seconds / CHECKS_PER_RUN

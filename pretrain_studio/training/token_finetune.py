"""Token-classification (NER) fine-tuning: one function, read top to bottom.

`run_token_finetuning(cfg, run_dir, reporter, dataset_path, base_model_dir)` builds a token classifier on the base
encoder, fits the per-token linear probe on the frozen features (the baseline, and with head_init=linear_probe the
head's start), applies the method (full, top layers, LoRA, AdaLoRA, IA3, bottleneck adapters), trains with the
`Trainer` (words to sub-tokens and windows in `token_alignment.py`, dynamic padding, length-grouped batches,
entity F1 on the validation split at every evaluation, early stopping, the best checkpoint becomes the model),
then scores the test split (or validation) beside the memorise baseline and the probe, writes the error table,
and saves `run_dir/model` in the method's layout (`model_store.py`).
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from torch.utils.data import SequentialSampler
from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                          PrinterCallback, Trainer)

from ..config import PEFT_METHODS, ConfigError, FinetuneConfig
from ..data.token_labelled import load_token_labelled, tag_names
from ..model_store import artefact_bytes, save_classifier
from .entity_metrics import entity_report, error_table, memorise_baseline
from .finetune import dropout_settings, plain_base_folder
from .finetune_loop import fine_tuning_callbacks, optimizers_for, train_to_end, training_arguments
from .hardware import resolve_device, resolve_precision
from .padding import PaddingMeter
from .peft_methods import apply_method, count_parameters, target_modules_for
from .reporting import RunReporter, keep_tracker_logs_in
from .token_alignment import encode_windows, word_scores
from .token_probe import fit_probe, init_token_head, probe_predict
from .verdict import entity_verdict

TOKEN_MODEL_TASK = "token-classification"  # studio_model.json's task, as Hugging Face's pipelines name it


class WindowTrainer(Trainer):
    """Evaluation in dataset order: its windows are merged back into sentences by position (the Trainer would
    otherwise order them by length when training batches are length-grouped)."""

    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset)


def build_token_classifier(cfg: FinetuneConfig, base_model_dir: Path, work_dir: Path, names: list[str],
                           total_steps: int, before_method=None):
    """(tokenizer, model ready to train, parameter counts). `before_method(model, tokenizer)` runs on the plain
    classifier before the method wraps it (the probe is fitted there)."""
    base = plain_base_folder(Path(base_model_dir), Path(work_dir))
    tokenizer = AutoTokenizer.from_pretrained(base)
    if not tokenizer.is_fast:
        raise ConfigError("base_model", f"{base}: token classification needs a fast tokenizer (tokenizer.json) to "
                                        "map words to sub-tokens")
    id2label = dict(enumerate(names))
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(names), id2label=id2label, label2id={v: k for k, v in id2label.items()},
        **dropout_settings(base, cfg.dropout), ignore_mismatched_sizes=True)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_seq_length > limit:
        raise ConfigError("max_seq_length", f"{cfg.max_seq_length} exceeds the model's {limit} positions")
    if before_method is not None:
        before_method(model, tokenizer)
    model = apply_method(model, cfg, total_steps)
    return tokenizer, model, count_parameters(model)


def _windows_dataset(windows: dict, order: list[int] | None = None) -> datasets.Dataset:
    keys = [k for k in ("input_ids", "attention_mask", "labels") if k in windows]
    order = order if order is not None else list(range(len(windows["input_ids"])))
    return datasets.Dataset.from_dict({k: [windows[k][i] for i in order] for k in keys})


def _by_length(windows: dict) -> dict:
    """The windows sorted by length (little padding in evaluation), the merge's bookkeeping in the same order."""
    order = sorted(range(len(windows["input_ids"])), key=lambda i: len(windows["input_ids"][i]))
    return {k: [v[i] for i in order] for k, v in windows.items()}


def predicted_tags(windows: dict, per_position: list[np.ndarray], lengths: list[int], names: list[str]
                   ) -> list[list[str]]:
    """Tag names per word from each window's per-position answers (label ids, or logits)."""
    merged = word_scores(windows, per_position, lengths)
    return [[names[int(v)] for v in (m.argmax(-1) if m.ndim == 2 else m)] for m in merged]


def run_token_finetuning(cfg: FinetuneConfig, run_dir: str | Path, reporter: RunReporter, dataset_path: str | Path,
                         base_model_dir: str | Path, show_progress: bool = False) -> dict:
    """Train, score, save `run_dir/model`; return {"status": "completed" | "stopped" | "cancelled", ...}."""
    run_dir = Path(run_dir)
    work_dir = run_dir / "data"
    work_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)

    # --- data -----------------------------------------------------------------------
    data = load_token_labelled(dataset_path)
    names = tag_names(data)
    eval_split = "validation"
    score_split = "test" if "test" in data else "validation"
    words = {split: list(data[split]["tokens"]) for split in data}
    tag_ids = {split: list(data[split]["tags"]) for split in data}
    gold = {split: [[names[t] for t in s] for s in tag_ids[split]] for split in data}
    reporter.log(f"dataset: {', '.join(f'{s} {len(d)}' for s, d in data.items())} sentences, "
                 f"{(len(names) - 1) // 2} entity types ({len(names)} tags)")

    epochs = cfg.effective_epochs(len(data["train"]))
    steps_per_epoch = math.ceil(len(data["train"]) / cfg.batch_size)
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * epochs))
    budget_only = bool(cfg.time_budget_minutes) and not cfg.max_steps and not cfg.num_epochs

    # --- model; the probe on the frozen features (baseline and, LP-FT, the head's start) -------
    probe_result = {}

    def probe_first(model, tokenizer):
        started = time.perf_counter()
        model.to(device)
        probe = fit_probe(model, tokenizer, words["train"], tag_ids["train"], cfg.max_seq_length, cfg.seed)
        probe_result["tags"] = [[names[t] for t in s] for s in
                                probe_predict(probe, model, tokenizer, words[score_split], cfg.max_seq_length)]
        if cfg.head_init == "linear_probe":
            init_token_head(model, probe)
        reporter.log(f"linear probe on the frozen features fitted in {time.perf_counter() - started:.1f} s"
                     f"{'; the head starts from it' if cfg.head_init == 'linear_probe' else ''}")

    tokenizer, model, counts = build_token_classifier(cfg, Path(base_model_dir), work_dir, names, total_steps,
                                                      before_method=probe_first)
    base = plain_base_folder(Path(base_model_dir), work_dir)
    targets = target_modules_for(model, cfg)
    if cfg.method in PEFT_METHODS and targets != cfg.target_modules():
        reporter.log(f"{cfg.method} targets {','.join(targets)} (the {model.config.model_type} model's names)")
    rate = cfg.effective_learning_rate(getattr(model.config, "hidden_size", None))
    reporter.info(device=device, precision=precision, parameters=counts["total_parameters"], **counts, labels=names,
                  task=cfg.task, learning_rate=rate, num_epochs=None if cfg.max_steps or budget_only else epochs,
                  world_size=1, effective_batch_size=cfg.effective_batch_size())
    length = (f"{cfg.max_steps} steps" if cfg.max_steps else "until the time budget" if budget_only else
              f"{epochs:g} epochs{' (auto)' if not cfg.num_epochs else ''} ({total_steps} steps)")
    reporter.log(f"learning rate {rate:g}{' (auto)' if not cfg.learning_rate else ''}, {length}")
    reporter.log(f"method {cfg.method}: {counts['trainable_parameters']:,} of {counts['total_parameters']:,} "
                 f"parameters train ({counts['trainable_share']:.2%}), on {device}")

    # --- words to sub-token windows -----------------------------------------------------
    inside_of = {i: names.index("I-" + n[2:]) for i, n in enumerate(names) if n.startswith("B-")}
    windows = {split: encode_windows(tokenizer, words[split], tag_ids[split], cfg.max_seq_length,
                                     cfg.label_all_subtokens, inside_of) for split in data}
    for split in (eval_split, score_split):
        windows[split] = _by_length(windows[split])
    long_share = {split: (len(w["input_ids"]) - len(data[split])) / max(1, len(data[split]))
                  for split, w in windows.items()}
    reporter.info(windowed_sentences=long_share, max_seq_length=cfg.max_seq_length)
    if any(long_share.values()):
        reporter.log("sentences longer than max_seq_length sub-tokens are read in overlapping windows: "
                     + ", ".join(f"{s} {v:.1%} more windows than sentences" for s, v in long_share.items()))
    encoded = {split: _windows_dataset(w) for split, w in windows.items()}
    lengths = {split: [len(s) for s in words[split]] for split in data}

    def compute_metrics(eval_pred):
        ids = eval_pred.predictions
        ids = ids[0] if isinstance(ids, tuple) else ids
        per_window = [ids[i, :len(w)] for i, w in enumerate(windows[eval_split]["word_ids"])]
        report = entity_report(gold[eval_split], predicted_tags(windows[eval_split], per_window,
                                                                lengths[eval_split], names))
        return {k: report[k] for k in ("entity_f1", "entity_precision", "entity_recall", "token_accuracy",
                                       "f1", "accuracy")}

    # --- trainer ------------------------------------------------------------------------
    args = training_arguments(cfg, run_dir, rate, epochs, budget_only, device, precision, show_progress)
    collator = PaddingMeter(DataCollatorForTokenClassification(tokenizer), counting=lambda: model.training)
    callbacks = fine_tuning_callbacks(cfg, reporter, model, args)
    # Only each word's first sub-token is scored: the argmax per position is all compute_metrics needs.
    trainer = WindowTrainer(model=model, args=args, train_dataset=encoded["train"], eval_dataset=encoded[eval_split],
                            data_collator=collator, processing_class=tokenizer, compute_metrics=compute_metrics,
                            callbacks=callbacks.all, optimizers=optimizers_for(cfg, model, args),
                            preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1))
    if not show_progress:
        trainer.remove_callback(PrinterCallback)
    keep_tracker_logs_in(trainer, run_dir)

    # --- train (the best checkpoint is loaded at the end) --------------------------------
    if not train_to_end(trainer, cfg, reporter, callbacks, budget_only, collator):
        return {"status": "cancelled", "step": trainer.state.global_step}
    callback = callbacks.registry

    # --- what fine-tuning bought: the score split, beside the memorise baseline and the probe ---
    reporter.log(f"scoring the {score_split} split and computing baselines")
    trainer.compute_metrics = None  # scored here, against the score split's own windows
    prediction = trainer.predict(encoded[score_split])
    ids = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    per_window = [ids[i, :len(w)] for i, w in enumerate(windows[score_split]["word_ids"])]
    predicted = predicted_tags(windows[score_split], per_window, lengths[score_split], names)
    test_metrics = entity_report(gold[score_split], predicted)
    memorised = memorise_baseline(words["train"], gold["train"], words[score_split])
    baselines = {"memorise": entity_report(gold[score_split], memorised),
                 "linear_probe": entity_report(gold[score_split], probe_result["tags"])}
    errors = error_table(words[score_split], gold[score_split], predicted)
    reporter.metrics(trainer.state.global_step, {f"{score_split}_entity_f1": test_metrics["entity_f1"],
                                                 f"{score_split}_accuracy": test_metrics["token_accuracy"],
                                                 f"{score_split}_f1": test_metrics["entity_f1"]})

    # --- save ----------------------------------------------------------------------------
    model_dir = run_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    save_classifier(trainer.model, tokenizer, model_dir, method=cfg.method, base_model=str(base),
                    id2label=dict(enumerate(names)), adapter_size=cfg.adapter_size, task=TOKEN_MODEL_TASK)
    size = artefact_bytes(model_dir)
    status = "stopped" if callback.stopped_by_user else "completed"
    verdict = entity_verdict(test_metrics["entity_f1"], baselines["memorise"]["entity_f1"],
                             baselines["linear_probe"]["entity_f1"], method=cfg.method, learning_rate=rate,
                             steps=trainer.state.global_step, hidden_size=getattr(model.config, "hidden_size", None))
    reporter.info(test_metrics=test_metrics, baselines=baselines, score_split=score_split, artifact_bytes=size,
                  verdict=verdict, error_table=errors)
    reporter.progress(trainer.state.global_step)
    reporter.log(f"{status} at step {trainer.state.global_step}: {score_split} entity F1 "
                 f"{test_metrics['entity_f1']:.4f} (memorise {baselines['memorise']['entity_f1']:.4f}, linear probe "
                 f"{baselines['linear_probe']['entity_f1']:.4f}), token accuracy {test_metrics['token_accuracy']:.4f};"
                 f" {size / 1e6:.2f} MB saved")
    if verdict["advice"]:
        reporter.log(f"verdict: {verdict['advice']}")
    return {"status": status, "step": trainer.state.global_step, "model_dir": str(model_dir)}

"""Text-classification fine-tuning: one function, read top to bottom.

`run_finetuning(cfg, run_dir, reporter, dataset_path, base_model_dir)` builds a
sequence classifier on the base encoder, applies the method (full, top
layers, LoRA, AdaLoRA, IA3, bottleneck adapters; see `peft_methods.py`),
trains with the Hugging Face `Trainer` (dynamic padding, evaluation every
`eval_steps`, early stopping, the best checkpoint becomes the final model),
then scores the test split (or validation) beside two baselines and saves
`run_dir/model` in the method's standard layout (see `model_store.py`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          PrinterCallback, Trainer)

from ..config import PEFT_METHODS, ConfigError, FinetuneConfig
from ..data.labelled import load_labelled
from ..model_store import artefact_bytes, is_classifier_folder, load_encoder_weights_source, save_classifier
from ..pooling import apply_pooling
from .classification_metrics import (accuracy_and_f1, classification_report, linear_probe_baseline,
                                     majority_baseline)
from .distributed import is_main, main_first, rank_device
from .finetune_loop import fine_tuning_callbacks, optimizers_for, train_to_end, training_arguments
from .hardware import resolve_device, resolve_precision
from .head_init import init_head_from_probe
from .padding import PaddingMeter
from .peft_methods import apply_method, count_parameters, target_modules_for
from .reporting import RunReporter, keep_tracker_logs_in
from .verdict import fine_tuning_verdict


def split_columns(dataset) -> tuple[list[str], list[str] | None, list[int]]:
    texts = list(dataset["text"])
    pairs = list(dataset["text_pair"]) if "text_pair" in dataset.column_names else None
    return texts, pairs, list(dataset["label"])


def plain_base_folder(base_model_dir: Path, work_dir: Path) -> Path:
    """A folder `from_pretrained` can load: the base itself, or a fine-tuned run's weights merged and saved."""
    if not is_classifier_folder(base_model_dir):
        return base_model_dir
    import hashlib

    folder = work_dir / f"base-{hashlib.sha1(str(Path(base_model_dir).resolve()).encode()).hexdigest()[:10]}"
    if (folder / "config.json").exists():  # merged once already (e.g. by the pre-launch parameter count)
        return folder
    merged = load_encoder_weights_source(base_model_dir)
    merged.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base_model_dir).save_pretrained(folder)
    return folder


def build_classifier(cfg: FinetuneConfig, base_model_dir: Path, work_dir: Path, names: list[str],
                     total_steps: int, train=None, reporter: RunReporter | None = None):
    """(tokenizer, model ready to train, parameter counts): a sequence classifier on the base encoder with
    cfg.method applied. Also used before launch to show trainable and total parameters. With the training split
    `train` and head_init=linear_probe, the head starts from the probe fitted on it (LP-FT)."""
    base = plain_base_folder(Path(base_model_dir), Path(work_dir))
    id2label = dict(enumerate(names))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(names), id2label=id2label, label2id={v: k for k, v in id2label.items()},
        **dropout_settings(base, cfg.dropout),
        ignore_mismatched_sizes=True,  # a fine-tuned base may have another number of labels
    )
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and cfg.max_seq_length > limit:
        raise ConfigError("max_seq_length", f"{cfg.max_seq_length} exceeds the model's {limit} positions")
    model = apply_pooling(model, cfg.pooling)  # before the method wraps the pooler (peft's modules_to_save)
    if train is not None and cfg.head_init == "linear_probe":
        texts, pairs, labels = split_columns(train)
        fitted = init_head_from_probe(model, tokenizer, texts, pairs, labels, cfg.max_seq_length, cfg.seed)
        if reporter is not None:
            reporter.log(f"head initialised from a linear probe on the frozen features "
                         f"(training accuracy {fitted:.3f})")
    targets = target_modules_for(model, cfg)
    if reporter is not None and cfg.method in PEFT_METHODS and targets != cfg.target_modules():
        reporter.log(f"{cfg.method} targets {','.join(targets)}: the default {cfg.lora_target_modules} named "
                     f"BERT's projections, these are the {model.config.model_type} model's")
    model = apply_method(model, cfg, total_steps)
    return tokenizer, model, count_parameters(model)


def dropout_settings(base: Path, dropout: float) -> dict:
    """The config keywords that set the encoder's dropout (`dropout`), by the base's architecture: BERT's hidden
    and attention dropout; ModernBERT's embedding, attention, feed-forward and classifier dropout."""
    from transformers import AutoConfig

    if AutoConfig.from_pretrained(base).model_type == "modernbert":
        return {"embedding_dropout": dropout, "attention_dropout": dropout, "mlp_dropout": dropout,
                "classifier_dropout": dropout}
    return {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}


def run_finetuning(cfg: FinetuneConfig, run_dir: str | Path, reporter: RunReporter, dataset_path: str | Path,
                   base_model_dir: str | Path, show_progress: bool = False) -> dict:
    """Train, score, save `run_dir/model`; return {"status": "completed" | "stopped", ...}."""
    run_dir = Path(run_dir)
    work_dir = run_dir / "data"
    work_dir.mkdir(parents=True, exist_ok=True)
    device = rank_device(resolve_device(cfg.device))  # in a torchrun launch: the GPU of this local rank
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)

    # --- data -----------------------------------------------------------------------
    data = load_labelled(dataset_path)
    names = data["train"].features["label"].names
    id2label = dict(enumerate(names))
    eval_split = "validation"
    score_split = "test" if "test" in data else "validation"
    reporter.log(f"dataset: {', '.join(f'{s} {len(d)}' for s, d in data.items())} rows, {len(names)} labels")

    # --- tokenizer, model and method (which parameters train) ------------------------------
    epochs = cfg.effective_epochs(len(data["train"]))  # num_epochs 0: enough passes for a small dataset
    steps_per_epoch = math.ceil(len(data["train"]) / cfg.batch_size)
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * epochs))
    # With a time budget and neither bound set, the budget alone ends the run (time_budget.py).
    budget_only = bool(cfg.time_budget_minutes) and not cfg.max_steps and not cfg.num_epochs
    with main_first():  # a fine-tuned base is merged into work_dir once, by rank 0 in a torchrun launch
        tokenizer, model, counts = build_classifier(cfg, Path(base_model_dir), work_dir, names, total_steps,
                                                    train=data["train"], reporter=reporter)
    base = plain_base_folder(Path(base_model_dir), work_dir)
    rate = cfg.effective_learning_rate(getattr(model.config, "hidden_size", None))  # 0: by method and base width
    reporter.info(device=device, precision=precision, parameters=counts["total_parameters"], **counts, labels=names,
                  learning_rate=rate, num_epochs=None if cfg.max_steps or budget_only else epochs,
                  world_size=cfg.world_size(), effective_batch_size=cfg.effective_batch_size())
    length = (f"{cfg.max_steps} steps" if cfg.max_steps else "until the time budget" if budget_only else
              f"{epochs:g} epochs{' (auto)' if not cfg.num_epochs else ''} ({total_steps} steps)")
    if cfg.time_budget_minutes:
        length += (f", at most {cfg.time_budget_minutes:g} min (the learning rate follows the clock; the "
                   f"{cfg.scheduler} schedule applies to step-bounded runs)")
    reporter.log(f"learning rate {rate:g}{' (auto)' if not cfg.learning_rate else ''}, {length}")
    reporter.log(f"method {cfg.method}: {counts['trainable_parameters']:,} of {counts['total_parameters']:,} "
                 f"parameters train ({counts['trainable_share']:.2%}), on {device}")

    def tokenize(batch):
        pairs = batch["text_pair"] if "text_pair" in batch else None
        return tokenizer(batch["text"], pairs, truncation=True, max_length=cfg.max_seq_length)

    encoded = data.map(tokenize, batched=True, remove_columns=[c for c in data["train"].column_names if c != "label"],
                       desc="tokenizing", keep_in_memory=True)

    # --- trainer ------------------------------------------------------------------------
    args = training_arguments(cfg, run_dir, rate, epochs, budget_only, device, precision, show_progress)
    loss_fn = None
    if cfg.class_weights:
        # Inverse class frequency, scaled so that a balanced dataset gets weight 1 for every class.
        per_class = np.bincount(np.asarray(data["train"]["label"]), minlength=len(names))
        weights = torch.tensor(per_class.sum() / (len(names) * np.maximum(per_class, 1)), dtype=torch.float)
        reporter.info(class_weights=dict(zip(names, weights.tolist())))

        def loss_fn(outputs, labels, num_items_in_batch=None):
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
            return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weights.to(logits.device))

    # Counts the padding of training batches only (evaluation runs with the model in eval mode).
    collator = PaddingMeter(DataCollatorWithPadding(tokenizer), counting=lambda: model.training)
    callbacks = fine_tuning_callbacks(cfg, reporter, model, args)
    trainer = Trainer(model=model, args=args, train_dataset=encoded["train"], eval_dataset=encoded[eval_split],
                      data_collator=collator, processing_class=tokenizer,
                      compute_metrics=accuracy_and_f1, callbacks=callbacks.all,
                      optimizers=optimizers_for(cfg, model, args), compute_loss_func=loss_fn)
    if not show_progress:
        trainer.remove_callback(PrinterCallback)
    keep_tracker_logs_in(trainer, run_dir)

    # --- train (the best checkpoint is loaded at the end) --------------------------------
    if not train_to_end(trainer, cfg, reporter, callbacks, budget_only, collator):
        return {"status": "cancelled", "step": trainer.state.global_step}
    callback = callbacks.registry

    # --- what fine-tuning bought: the score split, beside two baselines -------------------
    reporter.log(f"scoring the {score_split} split and computing baselines")
    prediction = trainer.predict(encoded[score_split])
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    scored = data[score_split]
    test_metrics = classification_report(prediction.label_ids, np.asarray(logits).argmax(-1), names)
    if not is_main():  # rank 0 computes the baselines, records the scores and saves the model
        return {"status": "stopped" if callback.stopped_by_user else "completed", "step": trainer.state.global_step}
    encoder = AutoModel.from_pretrained(base).to(device)
    baselines = {
        "majority": majority_baseline(data["train"]["label"], scored["label"], names),
        "linear_probe": linear_probe_baseline(encoder, tokenizer, split_columns(data["train"]),
                                              split_columns(scored), names, cfg.max_seq_length, cfg.seed),
    }
    del encoder
    reporter.metrics(trainer.state.global_step, {f"{score_split}_accuracy": test_metrics["accuracy"],
                                                 f"{score_split}_f1": test_metrics["f1"]})

    # --- save ----------------------------------------------------------------------------
    model_dir = run_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    save_classifier(trainer.model, tokenizer, model_dir, method=cfg.method, base_model=str(base), id2label=id2label,
                    adapter_size=cfg.adapter_size, pooling=cfg.pooling)
    size = artefact_bytes(model_dir)
    status = "stopped" if callback.stopped_by_user else "completed"
    verdict = fine_tuning_verdict(test_metrics["accuracy"], baselines["majority"]["accuracy"],
                                  baselines["linear_probe"]["accuracy"], method=cfg.method,
                                  learning_rate=rate, steps=trainer.state.global_step,
                                  hidden_size=getattr(model.config, "hidden_size", None), pooling=cfg.pooling,
                                  head_init=cfg.head_init)
    reporter.info(test_metrics=test_metrics, baselines=baselines, score_split=score_split, artifact_bytes=size,
                  verdict=verdict)
    reporter.progress(trainer.state.global_step)
    reporter.log(f"{status} at step {trainer.state.global_step}: {score_split} accuracy {test_metrics['accuracy']:.4f}, "
                 f"macro-F1 {test_metrics['f1']:.4f} (majority {baselines['majority']['accuracy']:.4f}, "
                 f"linear probe {baselines['linear_probe']['accuracy']:.4f}); {size / 1e6:.2f} MB saved")
    if verdict["advice"]:
        reporter.log(f"verdict: {verdict['advice']}")
    return {"status": status, "step": trainer.state.global_step, "model_dir": str(model_dir)}

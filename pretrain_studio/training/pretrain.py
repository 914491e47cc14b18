"""Masked-language-model pretraining: one function, read top to bottom.

`run_pretraining(cfg, run_dir, reporter, corpus_path, base_model_dir)` trains
a WordPiece tokenizer (or loads the base model's), builds a BERT or ModernBERT
(`architecture`) of a preset size (or loads the base model), packs the corpus into full blocks of
`max_seq_length` tokens (no padding), and trains with the Hugging Face
`Trainer`. Metrics and Stop go through the `RegistryCallback`. The result is
a standard folder `run_dir/model` that `transformers.pipeline("fill-mask")`
loads without this package.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers import (AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM, ModernBertConfig,
                          ModernBertForMaskedLM, PrinterCallback, Trainer, TrainingArguments)

from ..config import MODERNBERT_ATTENTION, ConfigError, PretrainConfig, preset_shape
from ..data.corpus import load_corpus
from .checkpoints import checkpoint_step, newest_complete_checkpoint
from .distributed import evaluate_before_training, is_main, main_first, rank_device
from .hardware import resolve_device, resolve_precision
from .masking import MaskingCollator
from .curriculum import BATCH_RAMP_START, SHORT_PIECES, Curriculum
from .mlm_data import block_ids, corpus_tokenizer, held_out_split, no_context_loss, packed_blocks, split_fingerprint
from .downstream import DownstreamCallback, DownstreamTask, check_interval
from .reporting import RegistryCallback, RunReporter, keep_tracker_logs_in
from .time_budget import UNBOUNDED_STEPS, TimeBudget, restore_elapsed
from .sparse_head import with_sparse_head

MAX_EVAL_BLOCKS = 512  # enough for a stable estimate; keeps periodic evaluation cheap on a CPU
# The config's dropout settings: BERT's, then ModernBERT's.
DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout", "embedding_dropout",
                  "mlp_dropout")


def set_dropout(model: torch.nn.Module, p: float) -> dict:
    """Train with dropout `p` everywhere; return the config's own values, which the saved model keeps."""
    saved = {name: getattr(model.config, name) for name in DROPOUT_FIELDS if hasattr(model.config, name)}
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        elif type(module).__name__ == "ModernBertAttention":
            # Its attention dropout is a number, not a module, and its output dropout is an Identity at 0.
            module.attention_dropout = p
            module.out_drop = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()
    return saved


def new_model(cfg: PretrainConfig, tokenizer) -> torch.nn.Module:
    """A freshly initialised MLM model of cfg.architecture at the cfg.model_size preset (see config.preset_shape)."""
    positions = max(512, cfg.max_seq_length)
    shape = preset_shape(cfg.model_size, cfg.architecture)
    if cfg.architecture == "modernbert":
        # The tokenizer is BERT's WordPiece: [CLS] starts a text and [SEP] ends it. attn_implementation "sdpa"
        # runs everywhere (CPU too); flash-attn is not required.
        special = {"pad_token_id": tokenizer.pad_token_id, "cls_token_id": tokenizer.cls_token_id,
                   "sep_token_id": tokenizer.sep_token_id, "bos_token_id": tokenizer.cls_token_id,
                   "eos_token_id": tokenizer.sep_token_id}
        config = ModernBertConfig(vocab_size=len(tokenizer), max_position_embeddings=positions,
                                  attn_implementation="sdpa", **special, **MODERNBERT_ATTENTION, **shape)
        return ModernBertForMaskedLM(config)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=positions,
                        pad_token_id=tokenizer.pad_token_id, **shape)
    return BertForMaskedLM(config)


def run_pretraining(cfg: PretrainConfig, run_dir: str | Path, reporter: RunReporter, corpus_path: str | Path,
                    base_model_dir: str | Path | None = None, show_progress: bool = False,
                    cache_dir: str | Path | None = None, downstream: list[tuple[str, str]] = ()) -> dict:
    """Train, save `run_dir/model`, return {"status": "completed" | "stopped", ...}.
    `cache_dir` (the workspace's cache/) keeps the trained tokenizer and packed blocks for later runs;
    `downstream` lists (dataset id, folder) of the labelled datasets checked while training (downstream.py)."""
    run_dir = Path(run_dir)
    cache_dir = Path(cache_dir) if cache_dir else run_dir / "data"
    device = rank_device(resolve_device(cfg.device))  # in a torchrun launch: the GPU of this local rank
    precision = resolve_precision(cfg.precision, device)
    if device.startswith("cuda"):
        torch.cuda.set_device(int(device.split(":")[1]))
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32 on Ampere and newer: fp32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)

    # Data preparation writes files (split indices, tokenizer, packed blocks): in a torchrun launch rank 0
    # makes them first and the other ranks then read them (training/distributed.py).
    with main_first():
        split, data_fingerprint, tokenizer, train_blocks, eval_blocks = prepare_data(
            cfg, run_dir, reporter, corpus_path, base_model_dir, cache_dir)

    # --- model --------------------------------------------------------------------
    if base_model_dir:
        model = AutoModelForMaskedLM.from_pretrained(base_model_dir)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and cfg.max_seq_length > limit:
            raise ConfigError("max_seq_length", f"{cfg.max_seq_length} exceeds the model's {limit} positions")
        if model.config.model_type != cfg.architecture:
            reporter.log(f"architecture: the base model's ({model.config.model_type}); the architecture setting "
                         f"({cfg.architecture}) applies to models from scratch")
    else:
        model = new_model(cfg, tokenizer)
    model = with_sparse_head(model)  # the vocabulary projection only at masked positions (see sparse_head.py)
    saved_dropout = set_dropout(model, cfg.dropout)
    parameters = sum(p.numel() for p in model.parameters())
    reporter.info(parameters=parameters, device=device, precision=precision, world_size=cfg.world_size(),
                  effective_batch_size=cfg.effective_batch_size())
    reporter.log(f"model: {type(model).__name__}, {parameters / 1e6:.2f} M parameters, on {device} in {precision}, "
                 f"dropout {cfg.dropout:g}" + effective_batch_note(cfg) + architecture_note(model))
    rate = cfg.effective_learning_rate()  # 0: the measured default for the size, or for continuing
    reporter.info(train_blocks=len(train_blocks), eval_blocks=len(eval_blocks), learning_rate=rate)
    reporter.log(f"learning rate {rate:g}{' (auto)' if not cfg.learning_rate else ''}")

    # The held-out blocks are masked once, with a fixed seed, so that every
    # evaluation scores the same positions and the eval curve is comparable.
    collator = MaskingCollator(tokenizer, mlm_probability=cfg.mask_probability,
                               whole_word_mask=cfg.whole_word_mask, seed=cfg.seed,
                               mask_replace_probability=cfg.mask_replace_probability)
    eval_blocks = collator.mask_once(eval_blocks, seed=cfg.seed + 1)
    # The loss of guessing every masked token from its training frequency: the line the eval loss must go below.
    baseline = no_context_loss(train_blocks, eval_blocks, tokenizer, seed=cfg.seed)
    reporter.info(no_context_loss=baseline)
    reporter.log(f"no-context line: {baseline:.3f} nats (each masked held-out token guessed from its training "
                 "frequency alone)")
    # --- trainer ------------------------------------------------------------------
    tokens_per_step = cfg.effective_batch_size() * cfg.max_seq_length  # all processes together
    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        max_steps=cfg.max_steps if cfg.max_steps > 0 else (-1 if cfg.num_epochs else UNBOUNDED_STEPS),
        num_train_epochs=cfg.num_epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 32),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=rate,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        optim="adamw_torch_fused",  # one fused kernel for the whole update (the Trainer's default too, made explicit)
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        logging_steps=cfg.logging_steps,
        logging_nan_inf_filter=False,  # see RegistryCallback.on_log: NaN must not be drawn as 0.0
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        seed=cfg.seed,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        torch_compile=cfg.torch_compile,
        report_to=cfg.trackers(),
        disable_tqdm=not show_progress,
        dataloader_num_workers=0,
        # The Trainer drops dataset columns the model's forward() does not take; Chinese whole-word masking's
        # `word_start` column is for the collator, so it must stay.
        remove_unused_columns=not cfg.chinese_whole_word_mask,
    )
    resume_from = newest_complete_checkpoint(args.output_dir, log=reporter.log)
    start_step = checkpoint_step(resume_from) if resume_from is not None else 0
    budget = None
    if cfg.time_budget_minutes:
        budget = TimeBudget(cfg.time_budget_minutes, elapsed=restore_elapsed(resume_from))
        reporter.info(time_budget_seconds=budget.budget)
    curriculum = Curriculum(cfg.seq_length_warmup, cfg.batch_size_warmup, *block_ids(tokenizer), clock=budget,
                            world_size=cfg.world_size())
    callback = RegistryCallback(reporter, (lambda: curriculum.tokens_per_step(tokens_per_step)) if curriculum.active
                                else tokens_per_step)
    callbacks = [callback] + ([budget] if budget is not None else [])
    if curriculum.active:
        collator.curriculum = curriculum
        callbacks.append(curriculum)
        reporter.log(curriculum_note(cfg))
    checks = None
    if downstream and is_main():  # rank 0 checks; the other ranks wait for it at the next step's all-reduce
        tasks = [DownstreamTask(dataset_id, path, tokenizer, cfg.seed) for dataset_id, path in downstream]
        epoch_steps = math.ceil(cfg.num_epochs * len(train_blocks) / cfg.effective_batch_size())
        every, every_seconds = check_interval(cfg.downstream_eval_steps, cfg.max_steps or epoch_steps,
                                              budget.budget if budget else 0.0)
        checks = DownstreamCallback(tasks, reporter, every, cfg.seed, every_seconds=every_seconds, clock=budget)
        callbacks.append(checks)
    trainer = Trainer(
        model=model, args=args, train_dataset=train_blocks, eval_dataset=eval_blocks,
        data_collator=collator, processing_class=tokenizer, callbacks=callbacks,
        compute_metrics=masked_accuracy, preprocess_logits_for_metrics=argmax_logits,
    )
    if not show_progress:
        trainer.remove_callback(PrinterCallback)  # the registry and train.log carry the numbers
    keep_tracker_logs_in(trainer, run_dir)
    if budget is not None:  # the learning rate follows the clock (time_budget.py)
        budget.drive_schedule(trainer, cfg.warmup_steps)

    # --- train, evaluate, save ----------------------------------------------------------
    # The steps after the checkpoint (all of them, from step 0, without one) are trained again: their old points
    # leave the curves, so a step is never recorded twice.
    reporter.rewind(start_step if resume_from is not None else None)
    if resume_from is not None:
        reporter.log(f"resuming from {resume_from.name}")
    else:
        evaluate_before_training(trainer)  # the untrained model's eval loss: the curve's starting point at step 0
        if checks is not None:
            checks.check(model, 0)  # "no pretraining": the line the later checks must beat
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    reporter.info(train_seconds=output.metrics.get("train_runtime"),
                  trained_tokens=curriculum.trained_tokens() if curriculum.active
                  else (trainer.state.global_step - start_step) * tokens_per_step)
    if callback.cancelled:
        reporter.log(f"cancelled at step {trainer.state.global_step}")
        return {"status": "cancelled", "step": trainer.state.global_step}
    if not callback.stopped_by_user and trainer.state.global_step % cfg.eval_steps:
        trainer.evaluate()  # a final point, so the eval curve ends where the model ends
    if checks is not None and not callback.stopped_by_user:
        checks.check(trainer.model, trainer.state.global_step)  # ... and the downstream curve too
    if budget is not None:
        budget.report_end(reporter)
    model_dir = run_dir / "model"
    if is_main():  # one process writes the model: the same standard folder as a single-device run
        final = trainer.model.to_standard() if hasattr(trainer.model, "to_standard") else trainer.model
        final.config.update(saved_dropout)  # training-time dropout is a training setting, not the model's
        final.save_pretrained(str(model_dir))
        tokenizer.save_pretrained(str(model_dir))
    status = "stopped" if callback.stopped_by_user else "completed"
    reporter.progress(trainer.state.global_step)
    reporter.log(f"{status} at step {trainer.state.global_step}; model saved to {model_dir}")
    return {"status": status, "step": trainer.state.global_step, "model_dir": str(model_dir)}


def architecture_note(model: torch.nn.Module) -> str:
    """For a ModernBERT, what sets it apart from BERT in the log line: its feed-forward width and attention
    pattern."""
    config = model.config
    if config.model_type != "modernbert":
        return ""
    global_layers = sum(kind == "full_attention" for kind in config.layer_types)
    return (f"; ModernBERT: GeGLU feed-forward {config.intermediate_size} wide, global attention in "
            f"{global_layers} of {len(config.layer_types)} layers, a {config.local_attention}-token window in the "
            f"others, {config._attn_implementation} attention")


def curriculum_note(cfg: PretrainConfig) -> str:
    """The schedule levers that are on, as the log says them."""
    by = "of the time budget" if cfg.time_budget_minutes else "of the steps"
    parts = []
    if cfg.seq_length_warmup:
        parts.append(f"blocks in {SHORT_PIECES} short pieces for the first {cfg.seq_length_warmup:.0%} {by}")
    if cfg.batch_size_warmup:
        parts.append(f"the batch growing from {BATCH_RAMP_START:.0%} of {cfg.batch_size} over the first "
                     f"{cfg.batch_size_warmup:.0%} {by}")
    return "curriculum: " + "; ".join(parts)


def effective_batch_note(cfg: PretrainConfig) -> str:
    """What makes one optimizer step bigger than one batch (processes, accumulated micro-batches), if anything:
    the learning rate and the step count mean something else then, so the log says it."""
    parts = [f"{cfg.world_size()} processes"] if cfg.world_size() > 1 else []
    if cfg.gradient_accumulation_steps > 1:
        parts.append(f"{cfg.gradient_accumulation_steps} accumulated micro-batches")
    return f", {' x '.join(parts)} (effective batch {cfg.effective_batch_size()})" if parts else ""


def prepare_data(cfg: PretrainConfig, run_dir: Path, reporter: RunReporter, corpus_path, base_model_dir,
                 cache_dir: Path):
    """(split, its fingerprint, tokenizer, training blocks, held-out blocks): the corpus split by document,
    the tokenizer (the base model's, the run's own when resuming, or WordPiece trained on the corpus) and
    the documents packed into full blocks of max_seq_length tokens (see mlm_data.py)."""
    corpus = load_corpus(corpus_path)
    split = held_out_split(corpus, cfg.eval_fraction, cfg.seed)
    data_fingerprint = split_fingerprint(corpus, cfg.eval_fraction, cfg.seed)
    reporter.log(f"corpus: {len(split['train'])} training documents, {len(split['test'])} held out")

    if base_model_dir:
        tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
        reporter.log(f"tokenizer: from {base_model_dir} ({len(tokenizer)} tokens)")
    elif (run_dir / "tokenizer").is_dir():  # resuming (or rank 0 made it): the embeddings belong to this one
        tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
        reporter.log(f"tokenizer: the run's own, trained before ({len(tokenizer)} tokens)")
    else:
        tokenizer, hit = corpus_tokenizer(split["train"], data_fingerprint, cfg.vocab_size, cfg.lowercase, cache_dir)
        tokenizer.save_pretrained(run_dir / "tokenizer")
        reporter.log(f"tokenizer: WordPiece {'from the cache, ' if hit else ''}trained on the corpus "
                     f"({len(tokenizer)} tokens)")
    if tokenizer.mask_token is None:
        raise ConfigError("base_model", "its tokenizer has no mask token, so it cannot be trained with MLM")

    train_blocks, eval_blocks, hit = packed_blocks(split, data_fingerprint, tokenizer, cfg.max_seq_length, cache_dir,
                                                   chinese_words=cfg.chinese_whole_word_mask)
    if len(train_blocks) == 0 or len(eval_blocks) == 0:
        raise ValueError(f"the corpus is too small for blocks of {cfg.max_seq_length} tokens; "
                         "add text, lower max_seq_length or raise eval_fraction")
    if len(eval_blocks) > MAX_EVAL_BLOCKS:
        eval_blocks = eval_blocks.select(range(MAX_EVAL_BLOCKS))
    reporter.log(f"data: {len(train_blocks)} training blocks, {len(eval_blocks)} eval blocks "
                 f"of {cfg.max_seq_length} tokens{' (from the cache)' if hit else ''}"
                 f"{', with jieba word starts (Chinese whole-word masking)' if cfg.chinese_whole_word_mask else ''}")
    return split, data_fingerprint, tokenizer, train_blocks, eval_blocks


def argmax_logits(logits, labels):
    """Keep only the predicted ids: storing full-vocabulary logits for every eval block would be huge.
    The sparse head's logits have one row per masked position; they are put back on the (block, position)
    grid, so every batch has the labels' shape and the Trainer concatenates them like the labels."""
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = logits.argmax(dim=-1)
    if predicted.dim() == 1:
        grid = torch.full_like(labels, -100)
        grid[labels != -100] = predicted
        return grid
    return predicted


def masked_accuracy(eval_pred) -> dict:
    """Share of masked positions predicted correctly (unmasked positions carry label -100)."""
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    masked = labels != -100
    total = int(masked.sum())
    return {"accuracy": float((predictions[masked] == labels[masked]).sum() / total) if total else math.nan}

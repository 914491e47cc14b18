"""Tiny real model folders for the bad-input tests: an untrained 2-layer BERT (hidden 64, 64 positions) with a
WordPiece tokenizer trained on a slice of WikiText-2, saved exactly as transformers saves any model."""

from __future__ import annotations

from pathlib import Path

TINY_POSITIONS = 64


def save_tiny_mlm(folder: Path, corpus_file: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from pretrain_studio.data.tokenizer import train_tokenizer

    lines = [line for line in corpus_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer = train_tokenizer([lines], 500, True)
    torch.manual_seed(0)  # fixed weights: the same answers on every run
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=128,
                                       max_position_embeddings=TINY_POSITIONS))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

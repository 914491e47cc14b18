"""Data handling: corpus ingestion and statistics, tokenizer training."""

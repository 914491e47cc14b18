"""Pretrain Studio: MLM pretraining and fine-tuning of BERT-style encoders, in the browser or headless.

The engine (everything but `ui/`) never imports Gradio.
"""

__version__ = "0.1.0"

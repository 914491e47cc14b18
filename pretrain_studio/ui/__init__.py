"""The Gradio web UI: one module per tab, plots, and the server entry point."""

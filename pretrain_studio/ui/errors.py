"""Turn engine errors into Gradio errors: a clear message in the browser and the API, never a traceback."""

from __future__ import annotations

import functools

import gradio as gr

from ..studio import StudioError


def user_errors(fn):
    """Decorator: StudioError (and other ValueErrors from bad input) become gr.Error with the same message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (StudioError, ValueError, FileNotFoundError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper

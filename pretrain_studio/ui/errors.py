"""Turn engine errors into Gradio errors: a clear message in the browser and the API, never a traceback.

The engine writes its errors in English, naming the field, and most carry a key and parameters (errors.py);
in a browser tab set to another language those are shown from the key (i18n.translate_error keeps the field
name and the values). The toast's
heading ("Error", "Info") is Gradio's own: its frontend writes it in the browser's language, not ours."""

from __future__ import annotations

import functools

import gradio as gr

from ..errors import StudioError
from .i18n import t, translate_error


def user_errors(fn):
    """Decorator: StudioError (and other ValueErrors from bad input) become gr.Error with the same message,
    translated when the browser tab's language is not English."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (StudioError, ValueError, FileNotFoundError) as exc:
            raise gr.Error(translate_error(exc), print_exception=False) from None

    return wrapper


def ui_error(key: str, **values) -> gr.Error:
    """A gr.Error the UI itself raises (`raise ui_error("error.choose_run")`), in the tab's language."""
    return gr.Error(t(key, **values), print_exception=False)


def notify(key: str, **values) -> None:
    """A gr.Info toast in the tab's language."""
    gr.Info(t(key, **values))

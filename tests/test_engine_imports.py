"""Habit 1 of docs/DESIGN.md: the engine never imports Gradio (checked in a fresh interpreter)."""

import subprocess
import sys

from conftest import REPO

ENGINE_MODULES = ["pretrain_studio.studio", "pretrain_studio.cli", "pretrain_studio.jobs", "pretrain_studio.inference",
                  "pretrain_studio.training.pretrain", "pretrain_studio.data.corpus", "pretrain_studio.data.tokenizer"]


def test_engine_does_not_import_gradio():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in ENGINE_MODULES)
            + "assert 'gradio' not in sys.modules, 'gradio was imported'\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_ui_does_import_gradio():
    """The check above can fail: the UI side does pull gradio in."""
    code = "import sys, pretrain_studio.ui.app\nprint('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr

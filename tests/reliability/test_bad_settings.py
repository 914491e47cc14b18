"""Bad settings are refused before any job starts, naming the field, with the same message at every front door.

Each case goes through the three doors a user has: the API (a real `python app.py` driven with gradio_client),
the UI (the Launch handler as wired on the built Blocks, which raises gr.Error) and the CLI (`pretrain` /
`finetune` with the bad flag: exit status 2, one line on stderr). After each refusal the workspace holds no run
row, nothing is queued and there is no folder under runs/; the CLI also stores no corpus or dataset, since it
checks the settings before it ingests the files it was given.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest
from conftest import AUTHORS, REPO
from gradio_client import Client
from gradio_client.exceptions import AppError
from tiny_models import TINY_POSITIONS, save_tiny_mlm

from pretrain_studio.cli import main as cli_main
from pretrain_studio.studio import Studio

# (case, job kind, settings that differ from a valid launch, the message every door must show).
# "@name" stands for a model folder made by the `folders` fixture.
CASES = [
    ("pretrain-learning-rate-negative", "pretrain", {"learning_rate": -0.001},
     "learning_rate: must be at least 0 (got -0.001): give a rate above 0, or 0 for the measured default"),
    ("pretrain-batch-size-zero", "pretrain", {"batch_size": 0}, "batch_size: must be at least 1 (got 0)"),
    ("pretrain-longer-than-base-positions", "pretrain", {"base_model": "@tiny", "max_seq_length": TINY_POSITIONS + 1},
     f"max_seq_length: {TINY_POSITIONS + 1} exceeds the base model's {TINY_POSITIONS} positions"),
    ("pretrain-vocab-below-special-tokens", "pretrain", {"vocab_size": 3}, "vocab_size: must be at least 200 (got 3)"),
    ("pretrain-base-missing", "pretrain", {"base_model": "@missing"},
     "base_model: model '@missing' is neither a run id nor an existing folder"),
    ("pretrain-base-text-only", "pretrain", {"base_model": "@text_only"},
     "base_model: folder @text_only is not a Hugging Face model (no config.json)"),
    ("pretrain-base-config-without-weights", "pretrain", {"base_model": "@config_only"},
     "base_model: @config_only has no model weights (model.safetensors)"),
    ("finetune-learning-rate-negative", "finetune", {"learning_rate": -0.001},
     "learning_rate: must be at least 0 (got -0.001): give a rate above 0, or 0 for the method's default"),
    ("finetune-batch-size-zero", "finetune", {"batch_size": 0}, "batch_size: must be at least 1 (got 0)"),
    ("finetune-longer-than-base-positions", "finetune", {"max_seq_length": TINY_POSITIONS + 1},
     f"max_seq_length: {TINY_POSITIONS + 1} exceeds the base model's {TINY_POSITIONS} positions"),
    ("finetune-lora-rank-zero", "finetune", {"lora_r": 0}, "lora_r: must be at least 1 (got 0)"),
    ("finetune-lora-unknown-module", "finetune", {"lora_target_modules": "query,q_proj"},
     "lora_target_modules: the model has no module named 'q_proj'; its linear layers are called"),
    ("finetune-base-missing", "finetune", {"base_model": "@missing"},
     "base_model: model '@missing' is neither a run id nor an existing folder"),
    ("finetune-base-text-only", "finetune", {"base_model": "@text_only"},
     "base_model: folder @text_only is not a Hugging Face model (no config.json)"),
    ("finetune-base-config-without-weights", "finetune", {"base_model": "@config_only"},
     "base_model: @config_only has no model weights (model.safetensors)"),
]
IDS = [case[0] for case in CASES]
ENDPOINTS = {"pretrain": "/start_pretraining", "finetune": "/start_finetuning"}
TRAIN_FILE = AUTHORS["dev"]  # text,label CSV (60 rows, 3 classes): the CLI's fine-tuning data


@pytest.fixture(scope="module")
def folders(tmp_path_factory, wikitext_slice) -> dict[str, str]:
    """A real tiny model, and three folders that are not models: missing, a text file, config without weights."""
    root = tmp_path_factory.mktemp("models")
    tiny = save_tiny_mlm(root / "tiny", wikitext_slice)
    (root / "text_only").mkdir()
    (root / "text_only" / "notes.txt").write_text("not a model\n", encoding="utf-8")
    (root / "config_only").mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):  # everything but the weights
        shutil.copy(tiny / name, root / "config_only" / name)
    return {"tiny": str(tiny), "missing": str(root / "nowhere"), "text_only": str(root / "text_only"),
            "config_only": str(root / "config_only")}


def fill(value, folders: dict[str, str]):
    """Replace "@name" by the folder's path, also inside a message."""
    if isinstance(value, str):
        for name, path in folders.items():
            value = value.replace(f"@{name}", path)
    return value


def settings(kind: str, changes: dict, folders: dict, data_id: str) -> dict:
    """A valid launch of `kind` with `changes` applied."""
    base = ({"corpus_id": data_id, "max_steps": 2} if kind == "pretrain" else
            {"dataset_id": data_id, "base_model": folders["tiny"], "method": "lora", "max_seq_length": TINY_POSITIONS,
             "max_steps": 2})
    return {**base, **{key: fill(value, folders) for key, value in changes.items()}}


def assert_nothing_started(studio_root: Path, runs: list) -> None:
    assert runs == [], "a refused launch must not create a run"
    run_dirs = list((studio_root / "runs").glob("*")) if (studio_root / "runs").exists() else []
    assert run_dirs == [], f"a refused launch left folders under runs/: {run_dirs}"


# --- the API: a real app over HTTP -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False)


@pytest.mark.e2e
@pytest.mark.parametrize("case, kind, changes, expected", CASES, ids=IDS)
def test_api_refuses_bad_setting_naming_the_field(client, app_server, folders, case, kind, changes, expected):
    data = client.predict(api_name="/list_corpora" if kind == "pretrain" else "/list_datasets")[0]
    config = settings(kind, changes, folders, data["corpus_id" if kind == "pretrain" else "dataset_id"])
    with pytest.raises(AppError) as err:
        client.predict(config, api_name=ENDPOINTS[kind])
    assert str(err.value).startswith(fill(expected, folders)), str(err.value)
    assert client.predict(api_name="/queue") == []
    assert_nothing_started(app_server.workspace, client.predict(api_name="/list_runs"))


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_api_refuses_a_learning_rate_that_is_not_a_number(client, app_server, folders, kind):
    data = client.predict(api_name="/list_corpora" if kind == "pretrain" else "/list_datasets")[0]
    data_id = data["corpus_id" if kind == "pretrain" else "dataset_id"]
    config = settings(kind, {"learning_rate": "fast"}, folders, data_id)
    with pytest.raises(AppError, match=r"^learning_rate: 'fast' is not a number"):
        client.predict(config, api_name=ENDPOINTS[kind])
    assert_nothing_started(app_server.workspace, client.predict(api_name="/list_runs"))


# --- the UI: the Launch handlers on the built Blocks -------------------------------------------------------------

@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The Pretrain and Fine-tune tabs built on a Blocks over their own workspace (no worker: nothing may run)."""
    from pretrain_studio.ui.finetune_tab import build_finetune_tab
    from pretrain_studio.ui.pretrain_tab import build_pretrain_tab

    studio = Studio(tmp_path_factory.mktemp("ui") / "workspace", start_worker=False)
    with gr.Blocks() as blocks:
        tabs = {"pretrain": build_pretrain_tab(studio), "finetune": build_finetune_tab(studio)}
    yield studio, blocks, tabs
    studio.close()


def launch_handler(blocks: gr.Blocks, kind: str):
    """The function wired to the tab's Launch button, and the components it reads, in order."""
    for fn in blocks.fns.values():
        if fn.fn.__qualname__ == f"build_{kind}_tab.<locals>.on_launch":
            return fn.fn, fn.inputs
    raise AssertionError(f"no Launch handler on the {kind} tab")


@pytest.mark.parametrize("case, kind, changes, expected", CASES, ids=IDS)
def test_ui_launch_refuses_bad_setting_with_the_same_message(ui, folders, case, kind, changes, expected):
    studio, blocks, tabs = ui
    handler, components = launch_handler(blocks, kind)
    names = {id(component): name for name, component in tabs[kind].inputs.items()}
    data_id = (studio.list_corpora() if kind == "pretrain" else studio.list_datasets())[0]
    values = settings(kind, changes, folders, data_id["corpus_id" if kind == "pretrain" else "dataset_id"])
    form = [values.get(names[id(c)], c.value) for c in components]  # the form as shown, with the case's edits
    with pytest.raises(gr.Error) as err:
        handler(*form)
    assert err.value.message.startswith(fill(expected, folders)), err.value.message
    assert studio.queue() == []
    assert_nothing_started(studio.workspace.root, studio.list_runs())


# --- the CLI ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "workspace"
    Studio(root, start_worker=False).close()  # the sample corpus and dataset are registered once, here
    return root


def cli_argv(kind: str, changes: dict, folders: dict, wikitext_slice: Path, workspace: Path) -> list[str]:
    head = (["pretrain", "--corpus", str(wikitext_slice), "--max-steps", "2"] if kind == "pretrain" else
            ["finetune", "--train", str(TRAIN_FILE), "--base-model", folders["tiny"], "--method", "lora",
             "--max-seq-length", str(TINY_POSITIONS), "--max-steps", "2"])
    flags = [f"--{key.replace('_', '-')}={fill(value, folders)}" for key, value in changes.items()]
    return [*head, *flags, "--workspace", str(workspace)]  # argparse: a later flag wins over the head's


def stored(workspace: Path) -> tuple[int, int, list]:
    studio = Studio(workspace, start_worker=False)
    try:
        return len(studio.list_corpora()), len(studio.list_datasets()), studio.list_runs()
    finally:
        studio.close()


@pytest.mark.parametrize("case, kind, changes, expected", CASES, ids=IDS)
def test_cli_exits_2_naming_the_field_and_stores_nothing(cli_workspace, folders, wikitext_slice, capsys,
                                                         case, kind, changes, expected):
    corpora, datasets, _ = stored(cli_workspace)
    capsys.readouterr()
    status = cli_main(cli_argv(kind, changes, folders, wikitext_slice, cli_workspace))
    err = capsys.readouterr().err
    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: " + fill(expected, folders)), err
    assert "Traceback" not in err
    now_corpora, now_datasets, runs = stored(cli_workspace)
    assert (now_corpora, now_datasets) == (corpora, datasets), "the CLI ingested data for a launch it refused"
    assert_nothing_started(cli_workspace, runs)


def test_cli_learning_rate_that_is_not_a_number_names_the_flag(tmp_path, wikitext_slice):
    """Through the real command in a subprocess: argparse refuses the value, naming the flag, with exit status 2."""
    result = subprocess.run([sys.executable, "-m", "pretrain_studio", "pretrain", "--corpus", str(wikitext_slice),
                             "--learning-rate=fast", "--workspace", str(tmp_path / "ws")],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "--learning-rate" in result.stderr and "'fast'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ws" / "runs").exists() or not any((tmp_path / "ws" / "runs").iterdir())

"""What a validated config must also pass before it becomes a run, and recording it as one.

`check_launchable` looks at this machine and this workspace (the corpus or dataset exists, the base model
resolves, fits and has the layers a method names, the device and precision exist, the tracker is installed),
without loading weights, so a launch that cannot work is refused with a field-named `ConfigError` before
anything is queued. `record_run` writes the run's folder, its config file and its registry row. The launch
service, the CLI and a torchrun-started rank 0 (rank_worker.py) all go through both.
"""

from __future__ import annotations

import importlib.util

from ..config import SEQUENCE_TASK, TOKEN_TASK, TRACKERS, ConfigError, JobConfig
from ..model_lookup import resolve_model_dir
from ..registry import new_id
from ..run_states import RunStatus
from ..workspace import Workspace


def check_launchable(workspace: Workspace, cfg: JobConfig, check_data: bool = True) -> None:
    """Raise ConfigError (naming the field) unless `cfg` can be trained here. check_data=False skips the
    corpus or dataset lookup (the CLI checks the settings before it ingests the files that become the data)."""
    registry = workspace.registry
    if check_data:
        if cfg.kind == "finetune":
            dataset = registry.get_dataset(cfg.dataset_id)
            if dataset is None:
                raise ConfigError("dataset_id", key="error.dataset_missing", id=repr(cfg.dataset_id))
            check_task(cfg, dataset)
        if cfg.kind == "pretrain" and registry.get_corpus(cfg.corpus_id) is None:
            raise ConfigError("corpus_id", key="error.corpus_missing", id=repr(cfg.corpus_id))
    for dataset_id in getattr(cfg, "downstream_datasets", ()):
        dataset = registry.get_dataset(dataset_id)
        if dataset is None:
            raise ConfigError("downstream_datasets", key="error.dataset_missing", id=repr(dataset_id))
        if (dataset["stats"].get("task") or SEQUENCE_TASK) != SEQUENCE_TASK:
            raise ConfigError("downstream_datasets", f"dataset {dataset_id!r} is token-labelled; the downstream "
                                                     "checks fine-tune text classifiers")
        if "validation" not in dataset["stats"].get("splits", {}):
            raise ConfigError("downstream_datasets", f"dataset {dataset_id!r} has no validation split to score on")
    if cfg.base_model:
        from ..preflight import check_base_model

        try:
            base = resolve_model_dir(workspace, cfg.base_model)
        except ValueError as exc:
            raise ConfigError("base_model", str(exc)) from None
        check_base_model(base, cfg.max_seq_length)  # weights, tokenizer and config fit: read from disk only
    from .hardware import check_precision, resolve_device

    check_precision(cfg.precision, resolve_device(cfg.device))
    for tracker in cfg.trackers():
        if importlib.util.find_spec(TRACKERS[tracker]) is None:
            raise ConfigError("report_to", f"{tracker} is not installed (pip install {TRACKERS[tracker]})")
    if cfg.kind == "finetune":
        check_model_shape(workspace, cfg)


def check_task(cfg, dataset: dict) -> None:
    """The run's task is its dataset's: `auto` becomes it (so the saved config says which), another is refused."""
    task = dataset["stats"].get("task") or SEQUENCE_TASK
    if cfg.task == "auto":
        cfg.task = task
    elif cfg.task != task:
        raise ConfigError("task", f"{cfg.task} needs a dataset of that task; dataset {dataset['name']!r} was "
                                  f"uploaded for {task} (set task to {task} or auto)")
    if task == TOKEN_TASK and cfg.kind == "finetune":
        cfg.validate()  # the rules that depend on the task


def check_model_shape(workspace: Workspace, cfg) -> None:
    """Target modules and layer counts must exist in the base model: checked on an empty ("meta") copy of
    its architecture, so no weights are loaded and nothing is queued when they don't."""
    if cfg.method not in ("lora", "adalora", "ia3", "top_layers"):
        return
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from ..model_store import architecture_folder
    from .peft_methods import check_target_modules, encoder_layers, target_modules_for

    folder = architecture_folder(resolve_model_dir(workspace, cfg.base_model))
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
    if cfg.method == "top_layers":
        layers = len(encoder_layers(model))
        if cfg.top_layers > layers:
            raise ConfigError("top_layers", f"the model has only {layers} encoder layers")
    else:
        check_target_modules(model, target_modules_for(model, cfg), cfg.method)


def record_run(workspace: Workspace, cfg: JobConfig, device: str, status: RunStatus = RunStatus.QUEUED,
               owner: dict | None = None) -> str:
    """The run's folder, its config.json and its registry row; returns the new run id. `owner`: the process
    that trains a run recorded as running (run_owner.py)."""
    registry = workspace.registry
    run_id = new_id("run")
    run_dir = workspace.run_dir(run_id)
    run_dir.mkdir(parents=True)
    cfg.save(run_dir / "config.json")
    if cfg.kind == "finetune":
        source = registry.get_dataset(cfg.dataset_id)["name"]
    else:
        source = registry.get_corpus(cfg.corpus_id)["name"]
    parent = cfg.base_model if cfg.base_model and registry.get_run(cfg.base_model) else None
    registry.create_run(run_id, name=cfg.name or default_run_name(cfg, source), kind=cfg.kind, config=cfg.to_dict(),
                        corpus_id=getattr(cfg, "corpus_id", None), dataset_id=getattr(cfg, "dataset_id", None),
                        parent_id=parent, device=device, max_steps=cfg.max_steps, status=str(status), owner=owner)
    return run_id


def default_run_name(cfg: JobConfig, source_name: str) -> str:
    if cfg.kind == "finetune":
        return f"{cfg.method} fine-tune on {source_name}"
    base = "continued" if cfg.base_model else cfg.model_size
    if not cfg.base_model and cfg.architecture != "bert":
        base += f" {cfg.architecture}"
    return f"{base} MLM on {source_name}"

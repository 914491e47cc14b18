"""Which model folder a name means: a run id of this workspace, or a local folder. Never a model hub.

Every path that loads a model (launching on a base model, fill-mask, classify, scoring a file) asks here, so
the load policy (model_store.check_model_policy: safetensors weights, no custom code) and the one
"has a usable model" test are applied the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from .run_states import RunStatus
from .workspace import Workspace

MODEL_MARKERS = ("config.json", "studio_model.json")  # a full model, or a studio adapter layout


def holds_model(folder: Path) -> bool:
    """True when the folder holds a model or an adapter layout (weights are checked by the load policy)."""
    return any((folder / name).exists() for name in MODEL_MARKERS)


def has_usable_model(workspace: Workspace, run: dict) -> bool:
    """A run that ended with a saved model: what the Try tab and the base-model pickers offer."""
    return RunStatus(run["status"]).has_model and holds_model(workspace.run_dir(run["id"]) / "model")


def resolve_model_dir(workspace: Workspace, model: str) -> Path:
    """A run id -> its saved model folder; otherwise a local folder that holds a config.json. Never a hub id,
    and only folders that pass the load policy (safetensors weights, no custom code). ValueError otherwise."""
    from .model_store import check_model_policy  # here, not at the top: it brings torch, and listing runs must not

    run = workspace.registry.get_run(model)
    if run is not None:
        folder = workspace.run_dir(model) / "model"
        if not holds_model(folder):
            gone = "; its model files are missing (were they deleted?)" if run["status"] == "completed" else ""
            raise ValueError(f"run {model} has no saved model (status: {run['status']}){gone}")
        check_model_policy(folder)
        return folder
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ValueError(f"model {model!r} is neither a run id nor an existing folder "
                         "(models load from the workspace or a local folder, never from a model hub)")
    if not holds_model(folder):
        raise ValueError(f"folder {folder} is not a Hugging Face model (no config.json)")
    check_model_policy(folder)
    return folder.resolve()

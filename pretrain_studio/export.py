"""Export a run as a zip a user can take anywhere.

    <run_id>/model/          the model or adapter folder with its tokenizer (standard Hugging Face layouts)
    <run_id>/merged/         optional, LoRA-style runs: the adapter merged into a plain transformers model
    <run_id>/config.json     the settings that ran
    <run_id>/metrics.csv     every logged metric: step, name, value, time
    <run_id>/README.md       a model card: data (with a fingerprint), settings, metrics, library versions
    <run_id>/command.txt     the CLI command that reproduces the run
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import platform
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "transformers", "tokenizers", "datasets", "peft", "accelerate", "pretrain-studio")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_fingerprint(folder: str | Path) -> str:
    """SHA-256 over the data files of a corpus or dataset folder (names and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def metrics_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["step", "name", "value", "time"])
    writer.writerows([(r["step"], r["name"], r["value"], r["time"]) for r in rows])
    return out.getvalue()


def model_card(run: dict, data: dict | None, fingerprint: str | None, finals: dict, command: str,
               merged: bool, architecture: str = "") -> str:
    """README.md for the exported run."""
    config = run["config"]
    info = run["info"]
    token_task = run["kind"] == "finetune" and config.get("task") == "token_classification"
    kind = ("MLM pretraining" if run["kind"] == "pretrain" else
            f"{'token classification (named entities)' if token_task else 'text classification'} "
            f"({config.get('method')})")
    lines = [f"# {run['name']}", "", f"Exported from Pretrain Studio: run `{run['id']}`, {kind}, "
             f"status **{run['status']}** at step {run['step']}.", ""]
    if data:
        lines += ["## Data", "", f"- {data['kind']}: **{data['name']}** (`{data['id']}`)",
                  f"- fingerprint (SHA-256 of its stored files): `{fingerprint}`", ""]
    lines += ["## Settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | `{v}` |" for k, v in config.items()]
    lines += ["", "## Final metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.6g} |" for name, value in sorted(finals.items())]
    if info.get("test_metrics") and token_task:
        tm, base = info["test_metrics"], info["baselines"]
        lines += ["", f"On the {info.get('score_split', 'test')} split: entity F1 {tm['entity_f1']:.4f} (strict, "
                  f"micro; precision {tm['entity_precision']:.4f}, recall {tm['entity_recall']:.4f}), token accuracy "
                  f"{tm['token_accuracy']:.4f} (memorise baseline {base['memorise']['entity_f1']:.4f}, per-token "
                  f"linear probe {base['linear_probe']['entity_f1']:.4f})."]
    elif info.get("test_metrics"):
        tm, base = info["test_metrics"], info["baselines"]
        lines += ["", f"On the {info.get('score_split', 'test')} split: accuracy {tm['accuracy']:.4f}, macro-F1 "
                  f"{tm['f1']:.4f} (majority class {base['majority']['accuracy']:.4f}, linear probe "
                  f"{base['linear_probe']['accuracy']:.4f})."]
    if info.get("trainable_parameters"):
        lines += ["", f"{info['trainable_parameters']:,} of {info['total_parameters']:,} parameters trained."]
    lines += ["", "## How to load", ""]
    if run["kind"] == "pretrain":
        lines += ["```python", "from transformers import pipeline", 'fill = pipeline("fill-mask", model="model")',
                  "```"]
    else:
        auto_class = "AutoModelForTokenClassification" if token_task else "AutoModelForSequenceClassification"
        lines += ["`model/studio_model.json` names the method, the base model and the labels. Full and top-layer "
                  f"runs load with `{auto_class}.from_pretrained(\"model\")`; peft runs with "
                  "`PeftModel.from_pretrained(base, \"model\")` on the base model"
                  + ("; `merged/` is a plain transformers model with the adapter merged in." if merged else ".")]
        if token_task:
            lines += ["", "Tags are IOB2 (`O`, `B-<type>`, `I-<type>`), one per word, read at the word's first "
                      "sub-token (`tokenizer(words, is_split_into_words=True).word_ids()` maps them)."]
        elif architecture == "modernbert":
            lines += ["", f"A ModernBERT classifier pools natively (`classifier_pooling`, here "
                      f"`{config.get('pooling', 'cls')}`): a full model's config.json carries it; for a peft "
                      "adapter, load the base with `classifier_pooling=\"" + str(config.get("pooling", "cls"))
                      + "\"` before `PeftModel.from_pretrained`."]
        elif config.get("pooling") == "mean":
            lines += ["", "This classifier is mean-pooled (`\"pooling\": \"mean\"` in `studio_model.json`): its pooler "
                      "reads the average of the last hidden states over the real tokens, not the `[CLS]` state. "
                      "Without Pretrain Studio, compute that mean yourself and apply the pooler and the head:", "",
                      "```python", "batch = tokenizer(texts, padding=True, return_tensors=\"pt\")",
                      "out = model.bert(**batch)  # after loading as above (a peft model too)",
                      "mask = batch[\"attention_mask\"].unsqueeze(-1).float()",
                      "mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)",
                      "logits = model.classifier(model.bert.pooler(mean.unsqueeze(1)))  # the pooler reads position 0",
                      "```"]
    lines += ["", "## Reproduce", "", "```bash", command, "```", "", "## Library versions", ""]
    lines += [f"- {name} {version}" for name, version in library_versions().items()]
    return "\n".join(lines) + "\n"


def merge_adapter(model_folder: Path, out: Path) -> None:
    """A LoRA-style adapter merged into its base: a plain transformers folder."""
    from .model_store import load_classifier

    from .model_store import STUDIO_MODEL_FILE

    tokenizer, model, info = load_classifier(model_folder)
    if not hasattr(model, "merge_and_unload"):
        raise ValueError("only LoRA, AdaLoRA and IA3 runs have an adapter to merge")
    model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)
    # The merged model is a full one; its pooling must travel with it (a mean-pooled head read from [CLS] is wrong).
    (out / STUDIO_MODEL_FILE).write_text(json.dumps({**info, "method": "full", "base_model": str(out.name)},
                                                    indent=2) + "\n", encoding="utf-8")


def model_architecture(model_folder: Path) -> str:
    """The model_type of a run's model (an adapter's: its base model's), or "" when it cannot be read."""
    from .model_store import architecture_folder

    try:
        config = json.loads((architecture_folder(model_folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return ""
    return config.get("model_type", "") if isinstance(config, dict) else ""


def export_run(run: dict, run_dir: Path, out_dir: Path, *, data: dict | None, metrics: list[dict], finals: dict,
               command: str, merged: bool = False) -> Path:
    """Write `<out_dir>/<run_id>.zip` and return its path."""
    model_folder = run_dir / "model"
    if not model_folder.is_dir():
        raise ValueError(f"run {run['id']} has no saved model to export (status: {run['status']})")
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = data_fingerprint(data["path"]) if data else None
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        staging = Path(tmp) / run["id"]
        shutil.copytree(model_folder, staging / "model")
        if merged:
            merge_adapter(model_folder, staging / "merged")
        (staging / "config.json").write_text(json.dumps(run["config"], indent=2) + "\n", encoding="utf-8")
        (staging / "metrics.csv").write_text(metrics_csv(metrics), encoding="utf-8")
        (staging / "README.md").write_text(model_card(run, data, fingerprint, finals, command, merged,
                                                      model_architecture(model_folder)), encoding="utf-8")
        (staging / "command.txt").write_text(command + "\n", encoding="utf-8")
        target = out_dir / f"{run['id']}.zip"
        partial = target.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(staging.parent))
        partial.replace(target)  # never leave a half-written zip under the final name
    return target

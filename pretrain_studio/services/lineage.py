"""A run's lineage: where it comes from (corpus or dataset, tokenizer, base runs up the chain) and what was
built on it (descendants, down the chain)."""

from __future__ import annotations

from ..registry import Registry

MAX_DEPTH = 50  # a chain this long is a loop in old data, not a real lineage


def lineage(registry: Registry, run: dict) -> dict:
    ancestors, parent = [], run["parent_id"]
    while parent and (up := registry.get_run(parent)) and len(ancestors) < MAX_DEPTH:
        ancestors.append(_node(up))
        parent = up["parent_id"]
    root = registry.get_run(ancestors[-1]["run_id"]) if ancestors else run
    corpus = registry.get_corpus(root["corpus_id"]) if root["corpus_id"] else None
    dataset = registry.get_dataset(run["dataset_id"]) if run.get("dataset_id") else None
    base = root["config"].get("base_model")
    return {
        "corpus": {"corpus_id": corpus["id"], "name": corpus["name"]} if corpus else None,
        "tokenizer": "trained on the corpus" if root["kind"] == "pretrain" and not base
        else f"from {base}" if base else None,
        "dataset": {"dataset_id": dataset["id"], "name": dataset["name"]} if dataset else None,
        "ancestors": ancestors,  # nearest first
        "descendants": _descendants(registry, run["id"]),
    }


def _descendants(registry: Registry, run_id: str, depth: int = 0) -> list[dict]:
    if depth > 20:
        return []
    return [{**_node(child), "children": _descendants(registry, child["id"], depth + 1)}
            for child in registry.dependents(run_id)]


def _node(run: dict) -> dict:
    return {"run_id": run["id"], "name": run["name"], "kind": run["kind"], "status": run["status"],
            "method": run["config"].get("method", "mlm")}

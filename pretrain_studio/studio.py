"""The engine's front desk: every user action, shared by the browser UI, the API and the CLI.

`Studio` opens a workspace, starts its job runner, and composes one service per thing a user does
(services/): corpora, datasets, launch, runs, searches, predictions. Its method names are the contract the API
(ui/api.py), the UI and the CLI call; each forwards to the service that owns it. Methods take and return
plain Python data and raise `StudioError` naming the problem. No Gradio here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from .config import field_docs
from .errors import NotFoundError, StudioError
from .jobs import JobRunner
from .services.corpora import CorpusService
from .services.datasets import DatasetService
from .services.launch import LaunchService
from .services.predictions import PredictionService
from .services.runs import RunService
from .services.search import SearchService
from .workspace import Workspace

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_CORPUS = ASSETS / "sample_corpus.txt"
SAMPLE_CORPUS_NAME = "Sample: Persuasion (Austen)"
SAMPLE_DATASET = ASSETS / "sample_labelled.csv"
SAMPLE_DATASET_NAME = "Sample: who wrote it? (Austen, Chesterton, Melville)"


def _forward(service: str, method):
    """A Studio method that calls the same-named method of one of its services (docstring and signature kept)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return getattr(getattr(self, service), method.__name__)(*args, **kwargs)

    return call


class Studio:
    """One workspace, its registry, its background job runner and the services on top of them."""

    def __init__(self, root: str | Path | None = None, start_worker: bool = True):
        self.workspace = Workspace(root)
        self.registry = self.workspace.registry
        self.runner = JobRunner(self.workspace)
        self.interrupted_at_start: list[str] = []
        self.worker_enabled = start_worker  # the CLI trains in the foreground and must not start a worker
        if start_worker:
            self.interrupted_at_start = self.runner.recover()
            self.runner.start()
        self.corpora = CorpusService(self.workspace)
        self.datasets = DatasetService(self.workspace)
        self.launch = LaunchService(self.workspace, wake=self.wake_worker)
        self.runs = RunService(self.workspace, wake=self.wake_worker)
        self.predictions = PredictionService(self.workspace)
        self.search = SearchService(self.workspace, self.launch, self.runs, foreground=not start_worker)
        if start_worker:  # after the runner's recovery: a study's interrupted trial is settled by its run's status
            self.search.recover()
        if self.workspace.is_new and SAMPLE_CORPUS.exists():
            self.upload_corpus([SAMPLE_CORPUS], SAMPLE_CORPUS_NAME, txt_mode="paragraphs")
        if self.workspace.is_new and SAMPLE_DATASET.exists():
            self.upload_dataset(SAMPLE_DATASET_NAME, SAMPLE_DATASET, "text", "label")

    def wake_worker(self, device: str) -> None:
        if self.worker_enabled:
            self.runner.wake(device)

    def close(self) -> None:
        self.search.close()
        self.runner.close()

    # corpora
    upload_corpus = _forward("corpora", CorpusService.upload_corpus)
    list_corpora = _forward("corpora", CorpusService.list_corpora)
    get_corpus = _forward("corpora", CorpusService.get_corpus)

    # labelled datasets
    upload_dataset = _forward("datasets", DatasetService.upload_dataset)
    inspect_dataset_file = _forward("datasets", DatasetService.inspect_dataset_file)
    list_datasets = _forward("datasets", DatasetService.list_datasets)
    get_dataset = _forward("datasets", DatasetService.get_dataset)

    # launching: configs, the queue, sweeps, pre-launch reports
    pretrain_config = _forward("launch", LaunchService.pretrain_config)
    finetune_config = _forward("launch", LaunchService.finetune_config)
    start_pretraining = _forward("launch", LaunchService.start_pretraining)
    start_finetuning = _forward("launch", LaunchService.start_finetuning)
    create_foreground_run = _forward("launch", LaunchService.create_foreground_run)
    queue = _forward("launch", LaunchService.queue)
    move_in_queue = _forward("launch", LaunchService.move_in_queue)
    enqueue_sweep = _forward("launch", LaunchService.enqueue_sweep)
    tokenizer_report = _forward("launch", LaunchService.tokenizer_report)
    parameter_report = _forward("launch", LaunchService.parameter_report)

    # runs that exist
    list_runs = _forward("runs", RunService.list_runs)
    get_run = _forward("runs", RunService.get_run)
    run_status = _forward("runs", RunService.run_status)
    run_metrics = _forward("runs", RunService.run_metrics)
    log_tail = _forward("runs", RunService.log_tail)
    lineage = _forward("runs", RunService.lineage)
    rename_run = _forward("runs", RunService.rename_run)
    tag_run = _forward("runs", RunService.tag_run)
    stop_run = _forward("runs", RunService.stop_run)
    cancel_run = _forward("runs", RunService.cancel_run)
    resume_run = _forward("runs", RunService.resume_run)
    delete_run = _forward("runs", RunService.delete_run)
    export_run = _forward("runs", RunService.export_run)
    compare_runs = _forward("runs", RunService.compare_runs)

    # hyperparameter searches
    start_search = _forward("search", SearchService.start_search)
    check_search = _forward("search", SearchService.check_search)
    suggested_space = _forward("search", SearchService.suggested_space)
    search_status = _forward("search", SearchService.search_status)
    list_studies = _forward("search", SearchService.list_studies)
    search_plots = _forward("search", SearchService.search_plots)
    pause_search = _forward("search", SearchService.pause_search)
    resume_search = _forward("search", SearchService.resume_search)
    cancel_search = _forward("search", SearchService.cancel_search)
    promote_best = _forward("search", SearchService.promote_best)
    join_study = _forward("search", SearchService.join_study)
    run_study = _forward("search", SearchService.run_study)

    # trying models
    mlm_models = _forward("predictions", PredictionService.mlm_models)
    classifier_models = _forward("predictions", PredictionService.classifier_models)
    fill_mask = _forward("predictions", PredictionService.fill_mask)
    classify = _forward("predictions", PredictionService.classify)
    predict_file = _forward("predictions", PredictionService.predict_file)
    tagger_models = _forward("predictions", PredictionService.tagger_models)
    tag_entities = _forward("predictions", PredictionService.tag_entities)
    tag_file = _forward("predictions", PredictionService.tag_file)


__all__ = ["NotFoundError", "Studio", "StudioError", "field_docs"]

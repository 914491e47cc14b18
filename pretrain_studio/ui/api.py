"""The named API endpoints: JSON in, JSON out, callable with `gradio_client`.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    corpus = client.predict([handle_file("notes.txt")], "my notes", api_name="/upload_corpus")
    run = client.predict({"corpus_id": corpus["corpus_id"], "max_steps": 100}, api_name="/start_pretraining")

Each endpoint is a thin, typed wrapper around a `Studio` method; a bad
request comes back as `gr.Error` with the engine's message (the client
raises it as `AppError`), never as a traceback. The names and argument names
here are a contract with scripts outside this repository: extend, don't rename.
"""

from __future__ import annotations

import gradio as gr
from gradio import FileData

from ..studio import Studio
from .errors import user_errors


def register_api(studio: Studio) -> None:
    """Register the endpoints on the Blocks being built (call inside `with gr.Blocks()`)."""

    def upload_corpus(files: list[FileData], name: str = "", txt_mode: str = "lines", text_column: str = "",
                      dedupe: bool = True, strip_gutenberg: bool = False, drop_boilerplate_lines: bool = False,
                      near_duplicates: bool = False) -> dict:
        """Ingest files (.txt, .jsonl, .csv, .tsv, .parquet, optionally .gz) as one corpus.
        txt_mode: 'lines' (a document per line) or 'paragraphs' (blank-line separated).
        dedupe (default true): remove exact duplicate documents. Off by default: strip_gutenberg (Project Gutenberg
        header and licence of .txt files), drop_boilerplate_lines (.txt lines with under 3 letters or under half
        letters), near_duplicates (MinHash LSH, Jaccard >= 0.8 on word 5-shingles).
        Returns {corpus_id, name, documents, characters, words, empty_lines, duplicate_documents, encodings, files,
        long_documents, removed: {exact_duplicates, near_duplicates, boilerplate_lines, gutenberg_boilerplate},
        cleaning: the options used}."""
        paths = [f["path"] if isinstance(f, dict) else getattr(f, "path", f) for f in (files or [])]
        return studio.upload_corpus(paths, name, txt_mode=txt_mode, text_column=text_column or None, dedupe=dedupe,
                                    strip_gutenberg=strip_gutenberg, drop_boilerplate_lines=drop_boilerplate_lines,
                                    near_duplicates=near_duplicates)

    def list_corpora() -> list:
        """All corpora, newest first."""
        return studio.list_corpora()

    def start_pretraining(config: dict) -> dict:
        """Queue an MLM pretraining run. `config` keys are PretrainConfig fields (see README). Returns {run_id, status}."""
        return studio.start_pretraining(config)

    def tokenizer_report(config: dict) -> dict:
        """Before launch: {unk_rate, long_document_share, ...} for the tokenizer this config would use."""
        return studio.tokenizer_report(config)

    def run_status(run_id: str) -> dict:
        """{run_id, kind, status, step, max_steps, error, name, device, elapsed_seconds, config, log_tail, cli_command, ...}"""
        return studio.run_status(run_id)

    def run_metrics(run_id: str, after_id: int = 0) -> list:
        """[{id, step, name, value, time}, ...] oldest first; pass the last id seen as after_id to get only new rows."""
        return studio.run_metrics(run_id, after_id)

    def stop_run(run_id: str) -> dict:
        """Save a checkpoint and stop a running run (a queued one leaves the queue). Returns {run_id, status}."""
        return studio.stop_run(run_id)

    def fill_mask(model: str, text: str, top_k: int = 5) -> list:
        """Top-k answers for each mask token in text: [[{token, score, sequence}, ...] per mask]. model: a run id."""
        return studio.fill_mask(model, text, top_k)

    def list_runs(filters: dict | None = None) -> list:
        """Summaries of runs, newest first. filters (optional): {kind, status, text, tag}. Each summary has
        run_id, name, kind, method, base_model, data, status, step, max_steps, best_metric, elapsed_seconds,
        created_at, tags, notes, ..."""
        return studio.list_runs(filters or {})

    def get_run(run_id: str) -> dict:
        """A run's page: run_status fields plus tags, notes, final_metrics, files, checkpoints and lineage
        {corpus, tokenizer, dataset, ancestors, descendants}."""
        return studio.get_run(run_id)

    def compare_runs(run_ids: list[str]) -> dict:
        """{runs, differing_settings: {setting: {run_id: value}}, final_metrics: {run_id: {metric: value}}}."""
        return studio.compare_runs(run_ids)

    def rename_run(run_id: str, name: str) -> dict:
        """{run_id, name}"""
        return studio.rename_run(run_id, name)

    def tag_run(run_id: str, tags: list[str], notes: str | None = None) -> dict:
        """Set a run's tags (replacing them) and, when given, its notes. Returns {run_id, tags, notes}."""
        return studio.tag_run(run_id, tags, notes)

    def delete_run(run_id: str, force: bool = False) -> dict:
        """Delete a run and its files. A run that other runs were built on is refused unless force is true."""
        return studio.delete_run(run_id, force)

    def cancel_run(run_id: str) -> dict:
        """End a running or queued run as `cancelled`, keeping no checkpoint. Returns {run_id, status}."""
        return studio.cancel_run(run_id)

    def resume_run(run_id: str, overrides: dict | None = None) -> dict:
        """Queue a stopped, interrupted or failed run again from its newest complete checkpoint; overrides may
        raise max_steps or num_epochs. Returns {run_id, status, from_checkpoint}."""
        return studio.resume_run(run_id, overrides or {})

    def queue() -> list:
        """Queued runs in the order they will run."""
        return studio.queue()

    def move_in_queue(run_id: str, position: int) -> list:
        """Move a queued run to a position (0 = next); returns the new queue."""
        return studio.move_in_queue(run_id, position)

    def enqueue_sweep(config: dict, grid: dict) -> list:
        """Queue one run per combination of up to two settings, e.g. grid {"lora_r": [4, 8, 16],
        "learning_rate": [5e-4, 1e-3]} over a pretraining or fine-tuning config. Returns [run_id, ...]."""
        return studio.enqueue_sweep(config, grid)

    def export_run(run_id: str, merged: bool = False) -> FileData:
        """A zip of the run: model or adapter folder with tokenizer, config.json, metrics.csv, a model card
        (README.md) and the CLI command; merged=true adds a merged model for LoRA-style runs."""
        return FileData(path=studio.export_run(run_id, merged))

    def upload_dataset(name: str, train_file: FileData, text_column: str = "", label_column: str = "",
                       validation_file: FileData | None = None, test_file: FileData | None = None,
                       text_pair_column: str = "", file_format: str = "auto", seed: int = 42, task: str = "auto",
                       label_names: str = "") -> dict:
        """Ingest a labelled dataset. Text classification: CSV/TSV (with or without header; headerless columns are
        col1, col2, ...), JSONL, Parquet, or label-prefixed lines ('<label> <text>' or fastText
        '__label__<label> <text>'). Token classification (NER): CoNLL column files (token first, tag last, blank
        lines between sentences), JSONL with a list of tokens and a list of tags (text_column / label_column name
        the fields; label_names names integer tags), or one character per line; IOB1, IOB2, BIOES/BMES or IO.
        task: auto (told by the file's content), sequence_classification or token_classification.
        Without validation/test files, a split is made with the seed.
        Returns {dataset_id, name, task, labels, counts, splits, ...}; for token classification also tag_scheme,
        sentences (per split), entities (per type per split), tokens, unseen_test_entities, tag_problems."""
        return studio.upload_dataset(name, train_file, text_column or None, label_column or None, validation_file,
                                     test_file, text_pair_column or None, file_format or "auto", None, seed,
                                     task or "auto", label_names or None)

    def list_datasets() -> list:
        """All labelled datasets, newest first."""
        return studio.list_datasets()

    def start_finetuning(config: dict) -> dict:
        """Queue a fine-tuning run. `config` keys are FinetuneConfig fields (see README). Returns {run_id, status}."""
        return studio.start_finetuning(config)

    def parameter_report(config: dict) -> dict:
        """Before launch: {trainable_parameters, total_parameters, trainable_share} for a fine-tuning config."""
        return studio.parameter_report(config)

    def classify(model: str, text: str, text_pair: str = "") -> dict:
        """Classify one text with a fine-tuned run (run id or folder): {label, scores: {label: probability}}."""
        return studio.classify(model, text, text_pair or None)

    def tag_entities(model: str, text: str) -> list:
        """The named entities in a text, from a token-classification run (run id or folder): a list of
        {start, end, type, score, text}, character offsets into text, type without the B-/I- prefix."""
        return studio.tag_entities(model, text)

    def predict_file(model: str, file: FileData, text_column: str = "", label_column: str = "") -> dict:
        """Predict every row of a file. Returns {file (CSV of predictions), rows, metrics (accuracy, f1,
        confusion_matrix when the file has labels, else null), misclassified}. With a token-classification model:
        a file of texts gives JSON Lines of their entities; a CoNLL or JSONL file with gold tags gives the same
        format with a predicted column, and metrics (entity_f1, per_type, ...) and error_table."""
        result = studio.predict_file(model, file, text_column or None, label_column or None)
        return {**result, "file": FileData(path=result["file"])}

    def start_search(config: dict) -> dict:
        """Start a hyperparameter search (an Optuna study) whose trials are ordinary runs through the queue.
        config: {name, template: a run id or a launch config, space: {setting: {low, high, log, step} or
        {choices: [...]}}, objective (a validation metric the task records, e.g. eval_accuracy, eval_loss),
        direction (minimize | maximize; default: as the objective), sampler (tpe | random | grid), pruner
        (median | successive_halving | none), n_trials (completed or pruned trials), timeout_minutes (0 = none),
        seed, first_trials: [{setting: value}, ...] tried first}. Every field is checked before anything is queued.
        Returns {study_id}."""
        return studio.start_search(config)

    def search_status(study_id: str) -> dict:
        """{status (running | paused | cancelled | completed | failed), reason, trials: [{number, run_id, params,
        value, status (a run status or pruned), steps, seconds, reason, intermediate}], best: {number, run_id,
        params, value} or null, objective, direction, n_trials, finished_trials, pruned_trials, steps_trained, ...}."""
        return studio.search_status(study_id)

    def list_studies() -> list:
        """The studies of this workspace, newest first: {study_id, name, status, objective, n_trials,
        finished_trials, best_value, ...}."""
        return studio.list_studies()

    def suggested_space(template: str | dict) -> dict:
        """A space to start from for a template (run id or launch config): {space, objectives}."""
        return studio.suggested_space(template)

    def pause_search(study_id: str) -> dict:
        """Start no new trial; the one training now finishes. Returns search_status."""
        return studio.pause_search(study_id)

    def resume_search(study_id: str, extra_trials: int = 0) -> dict:
        """Go on with a paused or finished study, with extra_trials more in its budget. Returns search_status."""
        return studio.resume_search(study_id, extra_trials)

    def cancel_search(study_id: str) -> dict:
        """End the study; its queued or training trial is cancelled. Returns search_status."""
        return studio.cancel_search(study_id)

    def promote_best(study_id: str, max_steps: int = 0) -> dict:
        """Queue the best trial's settings as a run of its own (max_steps > 0: train that long). Returns
        {run_id, config}."""
        return studio.promote_best(study_id, max_steps)

    for fn in (upload_corpus, list_corpora, start_pretraining, tokenizer_report, run_status, run_metrics, stop_run,
               fill_mask, list_runs, upload_dataset, list_datasets, start_finetuning, parameter_report, classify,
               tag_entities, predict_file, get_run, compare_runs, rename_run, tag_run, delete_run, cancel_run, resume_run, queue,
               move_in_queue, enqueue_sweep, export_run, start_search, search_status, list_studies, suggested_space,
               pause_search, resume_search, cancel_search, promote_best):
        gr.api(user_errors(fn), api_name=fn.__name__)
    _accept_calls_without_trailing_defaults()


def _accept_calls_without_trailing_defaults() -> None:
    """Let a raw HTTP call (/gradio_api/call/<name>) leave out trailing parameters that have defaults, as
    gradio_client does: an endpoint extended with a new parameter (upload_corpus's cleaning options, issue 16)
    keeps answering the calls written for its old parameter list. Gradio itself refuses a call with fewer
    values than inputs, so the missing ones are filled in with the function's defaults before its check."""
    import inspect

    from gradio.context import Context

    blocks = Context.root_block
    if blocks is None:
        return
    check = blocks.validate_inputs

    def validate_inputs(block_fn, inputs):
        missing = len(block_fn.inputs) - len(inputs)
        if missing > 0 and block_fn.fn is not None and block_fn.api_name:
            try:
                params = list(inspect.signature(block_fn.fn).parameters.values())
            except (TypeError, ValueError):
                params = []
            tail = params[len(inputs):len(block_fn.inputs)] if len(params) == len(block_fn.inputs) else []
            if tail and all(p.default is not inspect.Parameter.empty for p in tail):
                inputs.extend(p.default for p in tail)
        return check(block_fn, inputs)

    blocks.validate_inputs = validate_inputs

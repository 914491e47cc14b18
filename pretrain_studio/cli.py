"""The `pretrain-studio` command (also `python -m pretrain_studio`).

    pretrain-studio serve [--host 127.0.0.1] [--port 7860] [--workspace DIR] [--auth USER:PASSWORD]
                          [--auth-file FILE] [--max-upload-size 2GB] [--share]
    pretrain-studio pretrain --corpus FILE [FILE ...] [--model-size tiny --max-steps 200 ...]
    pretrain-studio finetune --train FILE [--validation FILE --test FILE] --base-model RUN_OR_FOLDER --method lora ...
    pretrain-studio finetune --task token_classification --train train.conll ... (named entities)
    pretrain-studio run runs/<run_id>/config.json     # replay a run's saved settings (either kind)
    pretrain-studio runs [--kind K --status S --text T]   # table of runs
    pretrain-studio resume RUN_ID [--max-steps N | --num-epochs E]   # continue from the newest checkpoint
    pretrain-studio export RUN_ID [--merged] [--output FILE.zip]
    pretrain-studio delete RUN_ID [--force] [--yes]
    pretrain-studio search SEARCH.json [--storage URL]     # a hyperparameter search, its trials in the foreground
    pretrain-studio search --study STUDY_ID [--storage URL] [--extra-trials N]   # join (another machine) or resume

`pretrain` and `run` train in the foreground with a progress bar and record
the run in the same workspace registry the app uses. Bad input prints one
line naming the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from .config import FinetuneConfig, PretrainConfig, field_docs

PENDING_DATA = "(the files given)"  # stands in for the corpus / dataset id while settings are checked before ingest


def _add_workspace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", default=None,
                        help="workspace folder (default: $PRETRAIN_STUDIO_HOME or ./workspace)")


def _add_config_flags(parser: argparse.ArgumentParser, cls=PretrainConfig, skip=("corpus_id",)) -> None:
    """One flag per config field (--max-steps, --learning-rate, ...), help from its docstring."""
    docs = field_docs(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                                help=docs.get(f.name))
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            shown = f.default if f.default is not MISSING else f.default_factory()
            parser.add_argument(flag, dest=f.name, type=kind, default=None,
                                help=f"{docs.get(f.name, '')} (default: {shown})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain-studio", description="MLM pretraining of BERT-style encoders.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    serve.add_argument("--auth", action="append", metavar="USER:PASSWORD",
                       help="require this login (repeatable; also $PRETRAIN_STUDIO_AUTH)")
    serve.add_argument("--auth-file", metavar="FILE", help="require a login: one user:password per line")
    serve.add_argument("--max-upload-size", default="2GB", metavar="SIZE",
                       help="largest file the server accepts, e.g. 500MB (default: 2GB)")
    _add_workspace(serve)

    pretrain = sub.add_parser("pretrain", help="ingest files and pretrain in the foreground")
    pretrain.add_argument("--corpus", nargs="+", required=True, metavar="FILE", help="corpus files")
    pretrain.add_argument("--corpus-name", default="", help="name of the corpus in the workspace")
    pretrain.add_argument("--txt-mode", choices=["lines", "paragraphs"], default="lines",
                          help=".txt files: one document per line, or blank-line-separated paragraphs")
    pretrain.add_argument("--text-column", default=None, help="text column of .csv/.tsv/.jsonl/.parquet files")
    pretrain.add_argument("--no-dedupe", dest="dedupe", action="store_false",
                          help="keep exact duplicate documents (by default they are removed, the first one kept)")
    pretrain.add_argument("--strip-gutenberg", action="store_true",
                          help=".txt files: drop a Project Gutenberg header and licence (text outside the markers)")
    pretrain.add_argument("--drop-boilerplate-lines", action="store_true",
                          help=".txt files: drop lines with under 3 letters or under 50%% letters")
    pretrain.add_argument("--near-duplicates", action="store_true",
                          help="also remove near-duplicate documents (MinHash, Jaccard >= 0.8 on word 5-shingles)")
    _add_config_flags(pretrain)
    _add_workspace(pretrain)

    finetune = sub.add_parser("finetune", help="ingest a labelled dataset and fine-tune in the foreground")
    finetune.add_argument("--train", required=True, metavar="FILE", help="training file (csv, tsv, jsonl, parquet, "
                          "or '<label> <text>' / '__label__<label> <text>' lines; for --task token_classification a "
                          "CoNLL column file, JSON Lines of tokens and tags, or one character per line)")
    finetune.add_argument("--validation", metavar="FILE", help="validation file (else a stratified split)")
    finetune.add_argument("--test", metavar="FILE", help="test file (else a stratified split)")
    finetune.add_argument("--text-column", default=None, help="text column (headerless files: col1, col2, ...)")
    finetune.add_argument("--text-pair-column", default=None, help="second text column for sentence pairs")
    finetune.add_argument("--label-column", default=None, help="label column")
    finetune.add_argument("--dataset-name", default="", help="name of the dataset in the workspace")
    finetune.add_argument("--label-names", default=None,
                          help="token classification, JSON Lines with integer tags: their names in order "
                               "(O,B-PER,I-PER,...) or a file of one name per line")
    _add_config_flags(finetune, FinetuneConfig, skip=("dataset_id",))
    _add_workspace(finetune)

    run = sub.add_parser("run", help="replay a saved config.json in the foreground (on several machines: on each)")
    run.add_argument("config", help="path to a run's config.json")
    run.add_argument("--node-rank", type=int, default=None, metavar="N",
                     help="this machine's index when the config has nodes > 1 (0 keeps the run in its registry)")
    run.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                     help="machine 0's address and a free port, where the machines meet (overrides the config)")
    run.add_argument("--print-torchrun", action="store_true",
                     help="print the torchrun command for this machine instead of running it (for srun, mpirun, ...)")
    _add_workspace(run)

    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("--kind", choices=["pretrain", "finetune"], help="only this kind")
    runs.add_argument("--status", help="only this status (queued, running, completed, stopped, failed, ...)")
    runs.add_argument("--text", help="only runs whose name, id, tags or notes contain this")
    _add_workspace(runs)

    resume = sub.add_parser("resume", help="continue a stopped, interrupted or failed run in the foreground")
    resume.add_argument("run_id")
    resume.add_argument("--max-steps", type=int, default=None, help="raise the run's max steps")
    resume.add_argument("--num-epochs", type=float, default=None, help="raise the run's epochs")
    _add_workspace(resume)

    export = sub.add_parser("export", help="zip a run: model, config, metrics, model card, command")
    export.add_argument("run_id")
    export.add_argument("--merged", action="store_true", help="also a merged model (LoRA, AdaLoRA, IA3 runs)")
    export.add_argument("--output", default=None, help="where to put the zip (default: workspace/exports/)")
    _add_workspace(export)

    search = sub.add_parser("search", help="run a hyperparameter search (an Optuna study) in the foreground, or "
                                           "join or resume one")
    search.add_argument("config", nargs="?", help="a JSON file: name, template, space, objective, direction, sampler, "
                                                  "pruner, n_trials, timeout_minutes, seed (see README)")
    search.add_argument("--study", default=None, metavar="STUDY_ID", help="join or resume this study")
    search.add_argument("--storage", default="", metavar="URL",
                        help="SQLAlchemy URL of the study's database (default: the workspace's search.db); every "
                             "machine that joins gives the same URL")
    search.add_argument("--extra-trials", type=int, default=0, metavar="N", help="add N trials to the budget")
    _add_workspace(search)

    delete = sub.add_parser("delete", help="delete a run and its files")
    delete.add_argument("run_id")
    delete.add_argument("--force", action="store_true", help="even if other runs were built on it")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_workspace(delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .ui.server import ServeError, serve

        try:
            serve(host=args.host, port=args.port, workspace=args.workspace, share=args.share, auth=args.auth,
                  auth_file=args.auth_file, max_upload_size=args.max_upload_size)
        except ServeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    from .studio import Studio, StudioError

    # The CLI never starts the background worker: it trains in the foreground itself.
    studio = Studio(args.workspace, start_worker=False)
    try:
        if args.command == "runs":
            studio.registry.mark_interrupted()  # runs whose process has gone are shown as interrupted
            print_runs(studio.list_runs({"kind": args.kind, "status": args.status, "text": args.text}))
            return 0
        if args.command == "resume":
            overrides = {"max_steps": args.max_steps, "num_epochs": args.num_epochs}
            return resume_foreground(studio, args.run_id, overrides)
        if args.command == "export":
            path = Path(studio.export_run(args.run_id, merged=args.merged))
            if args.output:
                path = Path(shutil.move(str(path), args.output))
            print(f"exported {args.run_id} to {path}")
            return 0
        if args.command == "delete":
            run = studio.run_status(args.run_id)
            if not args.yes and input(f"delete run {args.run_id} ({run['name']}) and its files? [y/N] ").strip().lower() \
                    not in ("y", "yes"):
                print("not deleted")
                return 1
            result = studio.delete_run(args.run_id, force=args.force)
            print(f"deleted {result['run_id']}")
            return 0
        if args.command == "pretrain":
            values = {f.name: getattr(args, f.name) for f in fields(PretrainConfig)
                      if f.name != "corpus_id" and getattr(args, f.name) is not None}
            # Settings first: a wrong flag is refused before the files are copied into the workspace as a corpus.
            studio.pretrain_config({**values, "corpus_id": PENDING_DATA}, check_data=False)
            corpus = studio.upload_corpus(args.corpus, args.corpus_name, txt_mode=args.txt_mode,
                                          text_column=args.text_column, dedupe=args.dedupe,
                                          strip_gutenberg=args.strip_gutenberg,
                                          drop_boilerplate_lines=args.drop_boilerplate_lines,
                                          near_duplicates=args.near_duplicates)
            from .data.corpus import long_documents_note, removed_note

            print(f"corpus {corpus['corpus_id']}: {corpus['documents']:,} documents, "
                  f"{corpus['characters']:,} characters{long_documents_note(corpus['long_documents'])}"
                  f"{removed_note(corpus['removed'])}")
            values["corpus_id"] = corpus["corpus_id"]
            return train_foreground(studio, values)
        if args.command == "finetune":
            values = {f.name: getattr(args, f.name) for f in fields(FinetuneConfig)
                      if f.name != "dataset_id" and getattr(args, f.name) is not None}
            studio.finetune_config({**values, "dataset_id": PENDING_DATA}, check_data=False)  # as for pretrain
            dataset = studio.upload_dataset(args.dataset_name, args.train, args.text_column, args.label_column,
                                            args.validation, args.test, args.text_pair_column, seed=args.seed or 42,
                                            task=values.get("task", "auto"), label_names=args.label_names)
            if dataset["task"] == "token_classification":
                print(f"dataset {dataset['dataset_id']}: {dataset['splits']} sentences, {dataset['tag_scheme']} "
                      f"tags, entities {dataset['entities']['train']}")
                if dataset["tag_problems"]["count"]:
                    print(f"note: {dataset['tag_problems']['message']}")
            else:
                print(f"dataset {dataset['dataset_id']}: {dataset['splits']} rows, labels {dataset['labels']}")
            values.update(kind="finetune", dataset_id=dataset["dataset_id"])
            return train_foreground(studio, values)
        if args.command == "run":
            return run_config(studio, args)
        if args.command == "search":
            return search_foreground(studio, args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


def search_foreground(studio, args) -> int:
    """Start a study from a JSON file, or join or resume one, and drive it here until its budget is spent."""
    import json

    from .studio import StudioError

    if bool(args.config) == bool(args.study):
        raise StudioError("search: give a search config file, or --study STUDY_ID to join or resume one")
    studio.registry.mark_interrupted()  # trials whose process has gone (an earlier command killed mid-trial)
    studio.search.say = print
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StudioError(f"{args.config}: file not found") from None
        except json.JSONDecodeError as exc:
            raise StudioError(f"{args.config}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        study_id = studio.start_search(config, args.storage)["study_id"]
        print(f"study {study_id}: started (storage {studio.search_status(study_id)['storage']})")
    else:
        study_id = args.study
        if args.storage or studio.registry.get_study(study_id) is None:
            if not args.storage:
                raise StudioError(f"--study: {study_id!r} is not in this workspace; give --storage URL, the database "
                                  "that holds it")
            studio.join_study(study_id, args.storage)
        studio.search.ensure_free(study_id)  # before the resume: an app driving it on this workspace keeps it
        if studio.search_status(study_id)["status"] != "running" or args.extra_trials:
            studio.resume_search(study_id, args.extra_trials)
        status = studio.search_status(study_id)
        print(f"study {study_id}: joined, {status['finished_trials']} of {status['n_trials']} trials finished")
    ended = studio.run_study(study_id)
    print_study(studio.search_status(study_id))
    return 0 if ended in ("completed", "paused", "running") else 1


def print_study(status: dict) -> None:
    print(f"{'trial':>5}  {'status':<11} {status['objective']:>14}  {'steps':>6}  params")
    for t in status["trials"]:
        value = "" if t["value"] is None else f"{t['value']:.4f}"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        print(f"{t['number']:>5}  {t['status']:<11} {value:>14}  {t['steps'] or 0:>6}  {params}")
    best = status["best"]
    print(f"study {status['study_id']}: {status['status']}" + (f" ({status['reason']})" if status["reason"] else ""))
    if best:
        print(f"best: trial {best['number']}, {status['objective']} {best['value']:.4f}, run {best['run_id']}")


def run_config(studio, args) -> int:
    """`run CONFIG.json`: train it here; with several machines, machine 0 registers and records the run and
    the others only lend their processes; or just print the torchrun command."""
    from .config import ConfigError, config_from_dict, load_config
    from .studio import StudioError

    try:
        values = load_config(args.config).to_dict()
        for key in ("node_rank", "rdzv_endpoint"):
            if getattr(args, key) is not None:
                values[key] = getattr(args, key)
        cfg = config_from_dict(values).validate()
    except ConfigError as exc:
        raise StudioError.of(exc) from None
    if args.print_torchrun or cfg.node_rank > 0:
        from .training.launcher import Launch, launch_environment, torchrun_command

        config_path = Path(args.config)
        if cfg.world_size() == 1:
            raise StudioError("devices: this config trains in one process (devices 1, nodes 1); there is no torchrun "
                              "command to print; raise devices or nodes")
        if args.print_torchrun:
            print(shlex.join(torchrun_command(cfg, studio.workspace.root, config_path=config_path, printable=True)))
            return 0
        # Machine N > 0: its processes join machine 0's launch, which records the run.
        print(f"machine {cfg.node_rank} of {cfg.nodes}: {cfg.devices} process(es) joining {cfg.rdzv_endpoint}")
        log = studio.workspace.root / f"torchrun-node{cfg.node_rank}.log"
        code = Launch.start(torchrun_command(cfg, studio.workspace.root, config_path=config_path),
                            launch_environment(cfg), log, echo=True).finish()
        print(f"machine {cfg.node_rank}: {'done' if code == 0 else f'torchrun ended with exit code {code}'}")
        return 0 if code == 0 else 1
    return train_foreground(studio, cfg.to_dict())


def resume_foreground(studio, run_id: str, overrides: dict) -> int:
    """Resume through the registry's queue entry, but train here, in the foreground."""
    from .training.execute import execute_run

    result = studio.resume_run(run_id, overrides)
    from .run_owner import this_process

    claimed = studio.registry.claim_next_queued_id(run_id, this_process("cli"))
    if claimed is None:
        print(f"error: run {run_id} was taken by another worker", file=sys.stderr)
        return 2
    print(f"run {run_id}: resuming from {result['from_checkpoint'] or 'the start (no complete checkpoint)'}")
    return report_foreground(studio, run_id, execute_run(studio.workspace, claimed, show_progress=True))


def train_foreground(studio, values: dict) -> int:
    from .training.execute import execute_run

    run_id = studio.create_foreground_run(values)
    print(f"run {run_id}: training in the foreground (folder {studio.workspace.run_dir(run_id)})")
    status = execute_run(studio.workspace, studio.registry.get_run(run_id), show_progress=True)
    return report_foreground(studio, run_id, status)


def report_foreground(studio, run_id: str, status: str) -> int:
    run = studio.registry.get_run(run_id)
    metrics = studio.registry.metrics_since(run_id)
    last = {m["name"]: m["value"] for m in metrics}
    shown = ", ".join(f"{k} {last[k]:.4g}" for k in ("eval_loss", "perplexity", "eval_accuracy", "eval_f1",
                                                      "test_accuracy", "tokens_per_second") if k in last)
    print(f"run {run_id}: {status} at step {run['step']}" + (f" ({shown})" if shown else ""))
    if status == "failed":
        print(run["error"], file=sys.stderr)
        return 1
    info = run["info"]
    if info.get("test_metrics") and "entity_f1" in info["test_metrics"]:
        tm, base = info["test_metrics"], info["baselines"]
        print(f"{info['score_split']}: entity F1 {tm['entity_f1']:.4f} (precision {tm['entity_precision']:.4f}, "
              f"recall {tm['entity_recall']:.4f}), token accuracy {tm['token_accuracy']:.4f}; baselines: memorise "
              f"{base['memorise']['entity_f1']:.4f}, linear probe {base['linear_probe']['entity_f1']:.4f}; "
              f"{info['trainable_parameters']:,} of {info['total_parameters']:,} parameters trained, "
              f"artefact {info['artifact_bytes'] / 1e6:.2f} MB")
    elif info.get("test_metrics"):
        tm, base = info["test_metrics"], info["baselines"]
        print(f"{info['score_split']}: accuracy {tm['accuracy']:.4f}, macro-F1 {tm['f1']:.4f}; baselines: majority "
              f"{base['majority']['accuracy']:.4f}, linear probe {base['linear_probe']['accuracy']:.4f}; "
              f"{info['trainable_parameters']:,} of {info['total_parameters']:,} parameters trained, "
              f"artefact {info['artifact_bytes'] / 1e6:.2f} MB")
    print(f"model: {studio.workspace.run_dir(run_id) / 'model'}")
    return 0


def print_runs(runs: list[dict]) -> None:
    if not runs:
        print("no runs yet")
        return
    header = f"{'run_id':32} {'status':11} {'kind':9} {'step':>11}  name"
    print(header)
    for r in runs:
        print(f"{r['run_id']:32} {r['status']:11} {r['kind']:9} {r['step']:>5}/{r['max_steps']:<5}  {r['name']}")


if __name__ == "__main__":
    sys.exit(main())

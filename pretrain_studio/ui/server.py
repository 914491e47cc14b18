"""Start the web app: open the workspace (recovering interrupted runs), start the worker, serve."""

from __future__ import annotations

from ..studio import Studio
from .app import build_app


def serve(host: str = "127.0.0.1", port: int = 7860, workspace: str | None = None, block: bool = True):
    import datasets
    import transformers

    # Runs report to the registry and train.log; console progress bars from a server are noise.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    studio = Studio(workspace)
    if studio.interrupted_at_start:
        print(f"marked {len(studio.interrupted_at_start)} run(s) interrupted by the last shutdown: "
              + ", ".join(studio.interrupted_at_start))
    app = build_app(studio)
    # Loopback by default: the app can start training jobs and read local folders,
    # so exposing it on a network is an explicit choice (--host 0.0.0.0).
    app.queue(default_concurrency_limit=8)
    print(f"Pretrain Studio: workspace {studio.workspace.root}")
    # Only these folders are served as files: API clients download predictions and exported zips from them.
    served = [studio.workspace.root / "predictions", studio.workspace.root / "exports"]
    for folder in served:
        folder.mkdir(exist_ok=True)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True,
               footer_links=["api"], allowed_paths=[str(f) for f in served])
    return app, studio

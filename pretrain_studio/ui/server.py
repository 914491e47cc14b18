"""Start the web app: open the workspace (recovering interrupted runs), start the worker, serve.

Safe defaults, because the app can start training jobs and read local folders:
- it listens on 127.0.0.1 unless `--host` says otherwise;
- a public share link only with `--share` (never because GRADIO_SHARE is set in the environment);
- no Gradio analytics and no model hub: both are switched off before gradio or transformers are imported;
- `--auth user:password`, `--auth-file FILE` or $PRETRAIN_STUDIO_AUTH put every page, upload and API
  endpoint behind a login; passwords are never printed;
- uploads above `--max-upload-size` (default 2 GB) are refused by the server;
- only the workspace's predictions/ and exports/ folders are served as files;
- the JSON polling routes (poll_routes.py) sit behind the same login.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Read once, when gradio and huggingface_hub are imported: set them first. Forced, not defaulted: the app
# never needs a hub (models start from a config or a local folder) and sends nothing anywhere.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from ..studio import Studio  # after the environment above
from .app import build_app
from .poll_routes import add_poll_routes

DEFAULT_MAX_UPLOAD = "2GB"
AUTH_ENV = "PRETRAIN_STUDIO_AUTH"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


class ServeError(ValueError):
    """A bad `serve` option, with a message naming the option (and never a password)."""


def parse_size(text: str | int, option: str = "--max-upload-size") -> int:
    """'2GB', '500MB', '1.5 GB', '1048576' (bytes) -> bytes; units are binary (1 MB = 1024 * 1024 bytes)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", str(text), re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ServeError(f"{option} {text!r}: expected a positive size like 2GB, 500MB or 1048576 (bytes)")
    unit = match.group(2).upper()
    return int(float(match.group(1)) * _UNITS[unit if unit in _UNITS else unit + "B"])


def format_size(size: int) -> str:
    """Bytes -> '2 GB', '1.5 MB', '512 B' (binary units, as parse_size reads them)."""
    for unit in ("TB", "GB", "MB", "KB"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.4g} {unit}"
    return f"{size} B"


def parse_credential(text: str, source: str) -> tuple[str, str]:
    """'user:password' -> (user, password); the password may itself hold ':'. Errors never echo the text."""
    user, sep, password = (text or "").strip().partition(":")
    if not sep or not user.strip() or not password:
        raise ServeError(f"{source}: expected user:password (a user name, a colon, a non-empty password)")
    return user.strip(), password


def read_auth(auth: list[str] | None = None, auth_file: str | None = None,
              environ: dict | None = None) -> list[tuple[str, str]]:
    """The logins from --auth (repeatable), --auth-file (one user:password a line; blank lines and # comments
    skipped) and $PRETRAIN_STUDIO_AUTH, in that order; empty means no login."""
    environ = os.environ if environ is None else environ
    logins = [parse_credential(item, "--auth") for item in auth or []]
    if auth_file:
        path = Path(auth_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ServeError(f"--auth-file {path}: cannot read it ({exc.strerror or exc})") from None
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                logins.append(parse_credential(line, f"--auth-file {path} line {number}"))
        if not logins:
            raise ServeError(f"--auth-file {path}: no user:password lines in it")
    if environ.get(AUTH_ENV):
        logins.append(parse_credential(environ[AUTH_ENV], f"${AUTH_ENV}"))
    return logins


SESSION_CAPACITY = 500  # bounds the sessions to ~300 MB; a tab idle past 500 newer sessions starts afresh


def launch_options(host: str, port: int, *, allowed_paths: list[str], share: bool = False,
                   auth: list[tuple[str, str]] | None = None, max_upload_bytes: int | None = None,
                   block: bool = True) -> dict:
    """The keyword arguments for `Blocks.launch`. `share` is always passed explicitly: left as None,
    Gradio would open a public link whenever GRADIO_SHARE=True happens to be in the environment."""
    return {
        "server_name": host, "server_port": port, "share": bool(share), "auth": auth or None,
        "max_file_size": max_upload_bytes, "allowed_paths": allowed_paths, "prevent_thread_lock": not block,
        "show_error": True, "footer_links": ["api"],
        # Gradio's banner tells the user to "set `share=True` in `launch()`", which is not how this app is
        # used; serve() prints its own address line (start_banner) instead.
        "quiet": True,
        # Every API call without a session (gradio_client's, curl's) opens a new Gradio session holding a copy
        # of every component's state, about 0.6 MB here; Gradio keeps 10,000 by default, so polling clients
        # grew the server by ~200 MB a minute (bench/api_load.py). Browser tabs keep their own session alive.
        "state_session_capacity": SESSION_CAPACITY,
    }


def security_notes(host: str, share: bool, logins: list[tuple[str, str]], max_upload_bytes: int) -> list[str]:
    """Start-up lines saying who can reach the app (user names only, never passwords)."""
    notes = [f"uploads up to {format_size(max_upload_bytes)}"]
    if logins:
        notes.append(f"login required ({len(logins)} user(s): {', '.join(sorted({u for u, _ in logins}))})")
    exposed = share or host not in LOOPBACK_HOSTS
    if exposed and not logins:
        where = "a public share link" if share else f"host {host}"
        notes.append(f"WARNING: {where} without --auth: anyone who reaches it can train models and read "
                     "local folders; add --auth user:password")
    return notes


def start_banner(local_url: str, share_url: str | None) -> list[str]:
    """The lines that say where the app is, in place of Gradio's banner (quiet=True in launch_options)."""
    lines = [f"* Running on local URL: {local_url}"]
    if share_url:
        lines.append(f"* Running on public URL: {share_url}")
    else:
        lines.append("* For a public link, restart with --share (and --auth user:password)")
    return lines


def serve(host: str = "127.0.0.1", port: int = 7860, workspace: str | None = None, block: bool = True,
          share: bool = False, auth: list[str] | None = None, auth_file: str | None = None,
          max_upload_size: str | int = DEFAULT_MAX_UPLOAD):
    # Options first: a typo in a flag should not cost a workspace recovery.
    logins = read_auth(auth, auth_file)
    max_upload_bytes = parse_size(max_upload_size)

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
    app.queue(default_concurrency_limit=8)
    print(f"Pretrain Studio: workspace {studio.workspace.root}")
    for note in security_notes(host, share, logins, max_upload_bytes):
        print(note)
    # Only these folders are served as files: API clients download predictions and exported zips from them.
    served = [studio.workspace.root / "predictions", studio.workspace.root / "exports"]
    for folder in served:
        folder.mkdir(exist_ok=True)
    # Launched without blocking so that the polling routes join the server before anyone is told its address;
    # then, when asked to, block here as launch itself would have.
    app.launch(**launch_options(host, port, allowed_paths=[str(f) for f in served], share=share, auth=logins,
                                max_upload_bytes=max_upload_bytes, block=False))
    add_poll_routes(app.server_app, studio)
    for line in start_banner(app.local_url, app.share_url):
        print(line, flush=True)
    if block:
        app.block_thread()
    return app, studio

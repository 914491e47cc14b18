"""Plain JSON GET routes for polling a run: `/studio_api/run_status/{run_id}` and `/studio_api/run_metrics/{run_id}`.

The Gradio endpoints `run_status` and `run_metrics` (ui/api.py) stay the contract; these routes answer the
same questions, with the same JSON, for scripts and dashboards that poll often. Why a second door: every
Gradio API call goes through Gradio's event queue (a POST that opens an event, then a server-sent-events
stream, a session holding every component's state), about 20-40 ms of server CPU a call. Ten clients
polling twice a second took most of a 2-core machine away from the training they watched
(bench/api_load.py). A plain FastAPI route costs about a millisecond and no session.

They sit behind exactly the app's login: the dependency is Gradio's own `login_check` route function, so
with `--auth` an anonymous request gets the same 401 as `/config` or `/gradio_api/info`.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from ..errors import NotFoundError
from ..studio import Studio

PREFIX = "/studio_api"


def _gradio_login_check(app: FastAPI):
    """Gradio's `login_check` (a FastAPI dependency that raises 401 when a login is required and missing)."""
    # Gradio includes its API router under /gradio_api; depending on the FastAPI version the app lists the
    # router's routes flat or as one included-router entry, so look inside either.
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        if (getattr(route, "path", None) or "").endswith("/login_check") and hasattr(route, "endpoint"):
            return route.endpoint
        inner = getattr(route, "original_router", None) or getattr(route, "app", None) or route
        pending.extend(getattr(inner, "routes", None) or [])
    raise RuntimeError("Gradio's /login_check route was not found; cannot protect the polling routes")


def _answer(call, *args):
    """The Studio's answer as JSON, or its error message (a missing run: 404; any other bad request: 400)."""
    try:
        return call(*args)
    except NotFoundError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except ValueError as exc:  # StudioError and the other bad-input errors
        return JSONResponse({"error": str(exc)}, status_code=400)


def add_poll_routes(app: FastAPI, studio: Studio) -> None:
    """Add the GET routes to the running Gradio server app (`Blocks.server_app`), ahead of Gradio's own."""
    # Without a login there is nothing to check, and Gradio's check is a sync function that FastAPI would
    # run in its thread pool for every request.
    login_required = getattr(app, "auth", None) is not None or getattr(app, "auth_dependency", None) is not None
    protected = [Depends(_gradio_login_check(app))] if login_required else []

    # Plain `def`: FastAPI runs them in its thread pool, so a slow disk never stalls the event loop.
    def run_status(run_id: str):
        """The same dict as the `run_status` API endpoint."""
        return _answer(studio.run_status, run_id)

    def run_metrics(run_id: str, after_id: int = 0):
        """The same rows as the `run_metrics` API endpoint: metric rows with id > after_id, oldest first."""
        return _answer(studio.run_metrics, run_id, after_id)

    before = len(app.router.routes)
    app.add_api_route(f"{PREFIX}/run_status/{{run_id}}", run_status, methods=["GET"], dependencies=protected)
    app.add_api_route(f"{PREFIX}/run_metrics/{{run_id}}", run_metrics, methods=["GET"], dependencies=protected)
    # First in the list: Starlette tries routes in order, and Gradio's ~80 would otherwise each be matched
    # against every poll first (a third of a poll's cost). No Gradio route starts with /studio_api.
    ours = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = ours

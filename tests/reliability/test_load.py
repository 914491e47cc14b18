"""Load: what keeps many polling clients cheap, checked without timing anything (the figures are
bench/api_load.py's).

- The server keeps a bounded number of Gradio sessions: every API call without a session opens one, and
  Gradio's default of 10,000 let polling clients grow the server by ~200 MB a minute.
- The JSON polling routes are matched before Gradio's own routes and need no session at all.
"""

import httpx
from conftest import free_port

from pretrain_studio.ui import server


def gradio_call(url: str, api_name: str, *args) -> str:
    event = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": list(args)}, timeout=30).json()
    return httpx.get(f"{url}gradio_api/call/{api_name}/{event['event_id']}", timeout=60).text


def test_sessionless_api_calls_keep_a_bounded_number_of_sessions(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "SESSION_CAPACITY", 5)
    port = free_port()
    app, studio = server.serve(port=port, workspace=str(tmp_path / "workspace"), block=False)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(12):
            assert "event: complete" in gradio_call(url, "list_corpora")
        # Twelve calls, each in a session of its own; only the newest five are kept.
        assert len(app.state_holder.session_data) == 5

        # The polling routes open no session (the five kept are still the same five), and come before
        # Gradio's routes in the list.
        kept = set(app.state_holder.session_data)
        for _ in range(5):
            assert httpx.get(f"{url}studio_api/run_metrics/run-none", timeout=30).status_code == 404
        assert set(app.state_holder.session_data) == kept
        paths = [getattr(route, "path", "") for route in app.server_app.router.routes]
        assert paths[:2] == ["/studio_api/run_status/{run_id}", "/studio_api/run_metrics/{run_id}"]
    finally:
        app.close()
        studio.close()

"""Safe defaults: loopback only, no share link or analytics unless asked, logins, upload limits, no path tricks,
safe model loading, and a test suite that cannot reach the network.

Two real app processes serve the HTTP tests: one with default settings (but GRADIO_SHARE=True and
GRADIO_ANALYTICS_ENABLED=True in its environment, which it must ignore), one with logins from all three sources
and a 1 MB upload limit. Model-loading tests use a tiny BERT saved to a temp folder.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import psutil
import pytest
import torch
from conftest import REPO, AppServer, write_wikitext_slice
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError
from tiny_models import save_tiny_mlm
from transformers import BertForMaskedLM

from pretrain_studio.cli import build_parser, main
from pretrain_studio.ui.server import ServeError, launch_options, parse_size, read_auth

PASSWORDS = {"alice": "pw-from-flag", "bob": "pw:from:file", "carol": "pw-from-env"}
STUDIO_DB_MAGIC = b"SQLite format 3"


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """Default flags; the environment asks for a share link and analytics, and Gradio's upload cache is a
    temp folder of its own so a path trick would show up as a stray file beside it."""
    root = tmp_path_factory.mktemp("default")
    server = AppServer(root / "workspace",
                       env={"GRADIO_SHARE": "True", "GRADIO_ANALYTICS_ENABLED": "True",
                            "GRADIO_TEMP_DIR": str(root / "gradio" / "uploads")}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    auth_file = root / "users.txt"
    auth_file.write_text(f"# one login a line\n\nbob:{PASSWORDS['bob']}\n", encoding="utf-8")
    server = AppServer(root / "workspace",
                       args=["--auth", f"alice:{PASSWORDS['alice']}", "--auth-file", str(auth_file),
                             "--max-upload-size", "1MB"],
                       env={"PRETRAIN_STUDIO_AUTH": f"carol:{PASSWORDS['carol']}"}).start()
    yield server
    server.stop()


def call_raw(server: AppServer, api_name: str, data: list) -> str:
    """POST to /gradio_api/call/<api_name> with exactly this JSON (no client-side uploads); the event stream."""
    event = httpx.post(f"{server.url}gradio_api/call/{api_name}", json={"data": data}, timeout=30).json()
    return httpx.get(f"{server.url}gradio_api/call/{api_name}/{event['event_id']}", timeout=120).text


def file_data(path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def logged_in(server: AppServer, user: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=30)
    response = http.post("login", data={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 200, response.text
    return http


# --- binding, share link, analytics -------------------------------------------------

def test_listens_on_loopback_only(default_server):
    listening = [c.laddr for c in psutil.Process(default_server.process.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}, listening
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"


def test_no_share_link_even_when_the_environment_asks(default_server, monkeypatch):
    # Gradio would read GRADIO_SHARE=True if share were left as None, then try (and, offline, fail) to open a
    # tunnel, saying so in the log.
    log = default_server.log()
    assert "share link" not in log.lower() and "public url" not in log.lower(), log
    # The app's own address line, not Gradio's advice to edit a launch() call the user never wrote.
    assert f"Running on local URL: {default_server.url.rstrip('/')}" in log and "restart with --share" in log, log
    assert "share=True" not in log, log
    monkeypatch.setenv("GRADIO_SHARE", "True")
    options = launch_options("127.0.0.1", 7860, allowed_paths=[])
    assert options["share"] is False
    assert launch_options("127.0.0.1", 7860, allowed_paths=[], share=True)["share"] is True
    assert build_parser().parse_args(["serve"]).share is False
    assert build_parser().parse_args(["serve", "--share"]).share is True


def test_analytics_off_even_when_the_environment_enables_them(default_server):
    config = httpx.get(default_server.url + "config", timeout=30).json()
    assert config["analytics_enabled"] is False
    assert config["max_file_size"] == 2 * 1024 ** 3  # the default upload limit, 2 GB


# --- logins -------------------------------------------------------------------------

def test_anonymous_requests_are_refused(auth_server):
    page = httpx.get(auth_server.url, timeout=30)
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    assert "Pretrain Studio" not in page.text  # the login form, not the app
    for method, path in [("GET", "config"), ("GET", "gradio_api/info"), ("GET", "gradio_api/queue/status"),
                         ("POST", "gradio_api/call/list_runs"), ("GET", "gradio_api/file=/etc/hostname"),
                         ("GET", "studio_api/run_status/anything"), ("GET", "studio_api/run_metrics/anything")]:
        response = httpx.request(method, auth_server.url + path, json={"data": [None]}, timeout=30)
        assert response.status_code == 401, (path, response.status_code, response.text[:200])
    upload = httpx.post(auth_server.url + "gradio_api/upload", files={"files": ("a.txt", b"hello\n")}, timeout=30)
    assert upload.status_code == 401
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(auth_server.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):  # Gradio answers a wrong password with 400
        Client(auth_server.url, auth=("alice", "wrong password"), verbose=False)


@pytest.mark.parametrize("user", sorted(PASSWORDS))  # --auth, --auth-file, $PRETRAIN_STUDIO_AUTH
def test_each_login_source_opens_the_app(auth_server, user):
    client = Client(auth_server.url, auth=(user, PASSWORDS[user]), verbose=False)
    assert isinstance(client.predict(api_name="/list_corpora"), list)
    http = logged_in(auth_server, user)
    assert "Pretrain Studio" in http.get("config").text
    assert http.post("gradio_api/upload", files={"files": ("a.txt", b"hello\n")}).status_code == 200
    # The polling routes let the login through too: past it, an unknown run is a 404 naming the run.
    missing = http.get("studio_api/run_status/no-such-run")
    assert missing.status_code == 404 and missing.json() == {"error": "run 'no-such-run' does not exist"}


def test_passwords_are_never_printed(auth_server, tmp_path, capsys):
    log = auth_server.log()
    assert "login required (3 user(s): alice, bob, carol)" in log
    assert not any(password in log for password in PASSWORDS.values()), log
    bad_file = tmp_path / "users.txt"
    bad_file.write_text("dave:okpass1\nerin-hunter2\n", encoding="utf-8")
    assert main(["serve", "--auth-file", str(bad_file)]) == 2
    assert main(["serve", "--auth", "frank:"]) == 2
    err = capsys.readouterr().err
    assert f"--auth-file {bad_file} line 2: expected user:password" in err
    assert "--auth: expected user:password" in err
    assert "hunter2" not in err and "okpass1" not in err


def test_read_auth_sources():
    env = {"PRETRAIN_STUDIO_AUTH": "carol:a:b"}
    assert read_auth(["alice:x"], None, env) == [("alice", "x"), ("carol", "a:b")]
    assert read_auth(None, None, {}) == []
    with pytest.raises(ServeError, match=r"\$PRETRAIN_STUDIO_AUTH: expected user:password"):
        read_auth(None, None, {"PRETRAIN_STUDIO_AUTH": ":nobody"})
    with pytest.raises(ServeError, match="--auth-file /no/such/file: cannot read it"):
        read_auth(None, "/no/such/file", {})


# --- upload limit ---------------------------------------------------------------------

def test_upload_over_the_limit_is_refused(auth_server):
    http = logged_in(auth_server, "alice")
    response = http.post("gradio_api/upload", files={"files": ("big.txt", b"x" * (2 * 1024 * 1024))})
    assert response.status_code == 413
    assert "maximum allowed size of 1048576 bytes" in response.text
    assert http.post("gradio_api/upload", files={"files": ("small.txt", b"x" * 1000)}).status_code == 200
    assert "uploads up to 1 MB" in auth_server.log()


def test_upload_size_values():
    assert parse_size("2GB") == 2 * 1024 ** 3
    assert parse_size("500MB") == 500 * 1024 ** 2
    assert parse_size("1.5 gb") == int(1.5 * 1024 ** 3)
    assert parse_size("1048576") == 1048576
    for bad in ("lots", "0MB", "-1GB", "5 parsecs"):
        with pytest.raises(ServeError, match=re.escape(f"--max-upload-size {bad!r}: expected a positive size")):
            parse_size(bad)
    assert main(["serve", "--max-upload-size", "lots"]) == 2


# --- uploaded names and served files --------------------------------------------------

EVIL_NAMES = ["../../evil.txt", "..\\..\\evil2.txt", "/tmp/evil3.txt", "sub/dir/evil4.txt"]


def test_uploaded_file_names_are_never_paths(default_server):
    root = default_server.workspace.parent
    before = {p for p in root.rglob("*evil*")}
    files = [("files", (name, b"a line of text\nanother line\n")) for name in EVIL_NAMES]
    stored = httpx.post(default_server.url + "gradio_api/upload", files=files, timeout=30).json()
    upload_dir = (root / "gradio" / "uploads").resolve()
    for path in map(Path, stored):
        assert path.resolve().is_relative_to(upload_dir) and not re.search(r"[/\\]", path.name), path
    stream = call_raw(default_server, "upload_corpus", [[file_data(p) for p in stored], "", "lines", ""])
    assert "event: complete" in stream, stream
    corpus = json.loads(stream.split("data: ", 1)[1])[0]
    # Every file holds the same two lines: the repeats are removed at ingest (the default) and counted.
    assert corpus["documents"] == 2 and corpus["removed"]["exact_duplicates"] == 2 * len(EVIL_NAMES) - 2
    assert not re.search(r"[/\\]|\.\.", corpus["name"]), corpus["name"]
    # Every file with 'evil' in its name is one of Gradio's stored copies, inside its upload folder.
    strays = [p for p in root.rglob("*evil*") if p not in before and not p.resolve().is_relative_to(upload_dir)]
    assert strays == []
    assert not Path("/tmp/evil3.txt").exists() and not (REPO / "evil.txt").exists()


def test_api_cannot_read_files_outside_the_uploads(default_server):
    """A FileData naming a server path that was never uploaded is refused, not ingested."""
    for target in [default_server.workspace / "studio.db", Path("/etc/passwd")]:
        stream = call_raw(default_server, "upload_corpus", [[file_data(target)], "stolen", "lines", ""])
        assert "event: error" in stream and str(target) in stream, stream
    corpora = Client(default_server.url, verbose=False).predict(api_name="/list_corpora")
    assert not any(c["name"] == "stolen" for c in corpora)


def test_only_predictions_and_exports_are_served(default_server):
    ws = default_server.workspace
    (ws / "predictions" / "ok.csv").write_text("text,label\n", encoding="utf-8")
    served = httpx.get(f"{default_server.url}gradio_api/file={ws}/predictions/ok.csv", timeout=30)
    assert served.status_code == 200 and served.text == "text,label\n"  # the route works: refusals below mean it
    for target in ["/etc/passwd", f"{ws}/studio.db", f"{ws}/predictions/../studio.db",
                   f"{ws}/predictions/%2e%2e/studio.db", f"{ws}/predictions/..%2fstudio.db", str(REPO / "app.py"),
                   "app.py", "../../../../etc/passwd", f"{ws}/corpora"]:
        response = httpx.get(f"{default_server.url}gradio_api/file={target}", timeout=30)
        assert response.status_code in (403, 404), (target, response.status_code)
        assert STUDIO_DB_MAGIC not in response.content and b"root:" not in response.content


# --- model loading ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory):
    """A tiny BERT MLM folder (safetensors) with a tokenizer trained on real text."""
    root = tmp_path_factory.mktemp("mlm")
    return save_tiny_mlm(root / "tiny", write_wikitext_slice(root / "slice.txt", 200))


def copy_model(source: Path, dest: Path) -> Path:
    dest.mkdir()
    for path in source.iterdir():
        (dest / path.name).write_bytes(path.read_bytes())
    return dest


def test_pickled_weights_are_refused(tiny_mlm, tmp_path, studio, default_server, capsys):
    folder = copy_model(tiny_mlm, tmp_path / "pickled")
    state = BertForMaskedLM.from_pretrained(folder).state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    message = f"{folder} has only pytorch_model.bin: safetensors weights are required"
    with pytest.raises(Exception, match=re.escape(message)):
        studio.fill_mask(str(folder), "the [MASK] .")
    with pytest.raises(Exception, match=re.escape(message)):  # the same words through the API
        Client(default_server.url, verbose=False).predict(str(folder), "the [MASK] .", 3, api_name="/fill_mask")
    with pytest.raises(Exception, match=re.escape(f"base_model: {message}")):
        studio.start_pretraining({"corpus_id": studio.list_corpora()[0]["corpus_id"], "base_model": str(folder)})
    corpus = write_wikitext_slice(tmp_path / "c.txt", 50)
    assert main(["pretrain", "--corpus", str(corpus), "--base-model", str(folder),
                 "--workspace", str(tmp_path / "cli_ws")]) == 2
    assert message in capsys.readouterr().err


CUSTOM_CODE = '''
from pathlib import Path
Path(__file__).with_name("CODE_RAN").write_text("custom code ran")
from transformers import BertForMaskedLM
class CustomConfig(BertConfig):
    model_type = "bert"
class CustomModel(BertForMaskedLM):
    config_class = CustomConfig
'''


@pytest.mark.parametrize("config_file", ["config.json", "tokenizer_config.json"])
def test_custom_model_code_never_runs(tiny_mlm, tmp_path, studio, config_file):
    folder = copy_model(tiny_mlm, tmp_path / "custom")
    (folder / "custom_model.py").write_text(CUSTOM_CODE, encoding="utf-8")
    config = json.loads((folder / config_file).read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoConfig": "custom_model.CustomConfig", "AutoModelForMaskedLM": "custom_model.CustomModel",
                          "AutoTokenizer": ["custom_model.CustomTokenizer", None]}
    (folder / config_file).write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(Exception, match=re.escape(f"{folder / config_file} asks for custom code (auto_map)")):
        studio.fill_mask(str(folder), "the [MASK] .")
    # Past the policy check, our loaders (no trust_remote_code) still take the built-in BERT code.
    from pretrain_studio.inference import load_mlm

    load_mlm(folder)
    assert not (folder / "CODE_RAN").exists()


def test_no_hub_ids_and_no_trust_remote_code(studio):
    with pytest.raises(Exception, match="never from a model hub"):
        studio.fill_mask("google-bert/bert-base-uncased", "the [MASK] .")
    offenders = []
    for path in (REPO / "pretrain_studio").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"trust_remote_code\s*=\s*(?!False)|torch\.load\(|use_safetensors\s*=\s*False", text):
            offenders.append(path.name)
    assert offenders == []


# --- offline test suite -----------------------------------------------------------------

def test_network_is_blocked_in_tests():
    with pytest.raises(OSError, match="network access blocked in tests"):
        socket.create_connection(("93.184.215.14", 80), timeout=5)
    with pytest.raises(OSError, match="network access blocked in tests"):
        socket.socket().connect_ex(("1.1.1.1", 443))
    with socket.socket() as listener:  # loopback stays open: the app servers and Chromium need it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        socket.create_connection(listener.getsockname(), timeout=5).close()

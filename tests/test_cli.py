"""The `pretrain-studio` CLI in a real subprocess: foreground pretraining, replaying a config, the runs table,
and bad input answered with one line naming the problem and exit status 2."""

import json
import subprocess
import sys

from conftest import REPO

from pretrain_studio.registry import Registry


def cli(*args, workspace):
    return subprocess.run([sys.executable, "-m", "pretrain_studio", *args, "--workspace", str(workspace)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_pretrain_then_replay_then_list(tmp_path, wikitext_slice):
    ws = tmp_path / "ws"
    result = cli("pretrain", "--corpus", str(wikitext_slice), "--model-size", "tiny", "--vocab-size", "1200",
                 "--max-steps", "12", "--max-seq-length", "64", "--eval-steps", "6", "--logging-steps", "3",
                 "--batch-size", "8", "--whole-word-mask", workspace=ws)
    assert result.returncode == 0, result.stderr
    assert "completed at step 12" in result.stdout
    runs = Registry(ws / "studio.db").list_runs()
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    run_dir = ws / "runs" / runs[0]["id"]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["whole_word_mask"] is True and saved["max_steps"] == 12
    assert (run_dir / "model" / "model.safetensors").exists()

    replay = cli("run", str(run_dir / "config.json"), workspace=ws)
    assert replay.returncode == 0, replay.stderr
    runs = Registry(ws / "studio.db").list_runs()
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    assert runs[0]["config"] == runs[1]["config"]

    table = cli("runs", workspace=ws)
    assert table.returncode == 0
    assert runs[0]["id"] in table.stdout and runs[1]["id"] in table.stdout and "completed" in table.stdout


def test_bad_setting_exits_2_naming_the_field(tmp_path, wikitext_slice):
    result = cli("pretrain", "--corpus", str(wikitext_slice), "--learning-rate=-0.001", workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert "learning_rate" in result.stderr and "Traceback" not in result.stderr
    assert Registry(tmp_path / "ws" / "studio.db").list_runs() == []


def test_bad_file_exits_2_naming_the_file(tmp_path):
    bad = tmp_path / "data.bin.txt"
    bad.write_bytes(bytes(range(256)) * 50)
    result = cli("pretrain", "--corpus", str(bad), workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert "data.bin.txt" in result.stderr and "binary" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_missing_or_broken_config(tmp_path):
    missing = cli("run", str(tmp_path / "nope.json"), workspace=tmp_path / "ws")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "config.json"
    broken.write_text(json.dumps({"corpus_id": "x", "max_stepz": 3}))
    typo = cli("run", str(broken), workspace=tmp_path / "ws")
    assert typo.returncode == 2 and "max_stepz" in typo.stderr


def test_resume_export_and_delete(tmp_path, wikitext_slice):
    ws = tmp_path / "ws"
    first = cli("pretrain", "--corpus", str(wikitext_slice), "--vocab-size", "1200", "--max-steps", "10",
                "--save-steps", "5", "--max-seq-length", "64", "--batch-size", "8", "--eval-steps", "5", workspace=ws)
    assert first.returncode == 0, first.stderr
    registry = Registry(ws / "studio.db")
    run_id = registry.list_runs()[0]["id"]
    registry.update_run(run_id, status="interrupted")  # as a crash would leave it
    resumed = cli("resume", run_id, "--max-steps", "14", workspace=ws)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint-10" in resumed.stdout and "completed at step 14" in resumed.stdout
    assert cli("resume", run_id, workspace=ws).returncode == 2  # completed runs are not resumable

    out = tmp_path / "run.zip"
    exported = cli("export", run_id, "--output", str(out), workspace=ws)
    assert exported.returncode == 0, exported.stderr
    import zipfile

    assert f"{run_id}/model/model.safetensors" in zipfile.ZipFile(out).namelist()

    listed = cli("runs", "--kind", "finetune", workspace=ws)
    assert run_id not in listed.stdout
    deleted = cli("delete", run_id, "--yes", workspace=ws)
    assert deleted.returncode == 0, deleted.stderr
    assert registry.get_run(run_id) is None and not (ws / "runs" / run_id).exists()
    assert cli("delete", run_id, "--yes", workspace=ws).returncode == 2

"""End-to-end browser test of fine-tuning: a user adds a labelled dataset, fine-tunes with LoRA, tries the model.

Against a real `python app.py` server (the `app_server` fixture, with its own temp
workspace), in Chromium:

0. Setup, through the API for speed: a tiny model is pretrained on a WikiText-2 slice
   (TINY_RUN, 40 steps); it is the base model.
1. Datasets: upload 300 lines of SST-2 train as the training file and 100 lines of SST-2 dev
   as the validation file (`<label> <text>` lines), click "Add dataset"; the message shows the
   rows per split and "2 labels", the summary shows the labels.
2. Bad input: a CSV whose 3rd data row has an empty label; an error toast names the file and
   the line, and no dataset is registered.
3. Fine-tune: pick the dataset, the pretrained run and LoRA; "Count parameters" shows the
   trainable and total counts worked out here from the model's shape (LoRA A and B on query and
   value in every layer, plus the pooler and the head); small settings are typed in and
   "Launch fine-tuning" queues a run with exactly those settings.
4. Runs: the app switches to the run, the plot gains points, the run completes, and the results
   table (fine-tuned (lora) beside the linear probe and the majority class, with the scores the
   registry holds) and a confusion-matrix heatmap appear.
5. Try / Classify: the probability bars for a typed sentence are the labels "0" and "1" with
   the values the `/classify` API endpoint gives for the same text.
6. Try / Predict a file: a 6-row CSV with labels gives a downloadable predictions CSV (one row
   per input), the accuracy computed from that CSV in the summary, and a confusion matrix
   counting the 6 rows.

Browser: Chromium at /usr/bin/chromium (or $CHROMIUM), driven by Playwright (see
test_browser.py, whose helpers this module reuses). Run it with

    .venv/bin/python -m pytest tests/e2e/test_browser_finetune.py -q -x

Set PRETRAIN_STUDIO_SCREENSHOT=1 to also write docs/screenshot-finetune.png (the Runs tab with
a finished fine-tuning run's results); normal runs write nothing into the repo.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time

import pytest
import test_browser
from conftest import DATA, REPO, TINY_RUN, wait_for
from test_browser import (
    LOSS_POINTS_JS,
    RUN_ID,
    TRAINING_TIMEOUT_MS,
    choose,
    combobox,
    expect,
    failure_report,
    loss_points,
    open_app,
    open_tab,
)

pytestmark = [pytest.mark.e2e, pytest.mark.real_data]  # SST-2's "<label> <text>" files, uploaded in the UI

page = test_browser.page  # the module-scoped Chromium page fixture (1300x1000, slow-machine timeouts), reused

SCREENSHOT = REPO / "docs" / "screenshot-finetune.png"
SST2 = DATA / "sst2"
FINETUNE = {"Max steps": 20, "Evaluate every": 5, "Log every": 5, "Batch size": 16, "Max sequence length": 48}
ENDED_BADLY = ("failed", "stopped", "interrupted")
LORA_RANK = 8  # the form's default, on query and value (the default target modules)
SENTENCE = "a gorgeous , witty and moving film ."

# Heatmap traces (confusion matrices) in the plots of the tab on screen (visited tabs stay in the DOM, hidden).
VISIBLE_HEATMAPS_JS = """() => [...document.querySelectorAll(".js-plotly-plot")]
    .filter(gd => gd.offsetParent !== null)
    .flatMap(gd => (gd.data || []).filter(t => t.type === "heatmap").map(t => t.z))"""
# The bars of the Classify section's chart (its layout title is "label probabilities").
PROBABILITY_BARS_JS = """() => {
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
        const title = gd.layout && gd.layout.title && (gd.layout.title.text ?? gd.layout.title);
        if (gd.offsetParent !== null && title === "label probabilities" && gd.data && gd.data.length)
            return {labels: Array.from(gd.data[0].y), values: Array.from(gd.data[0].x),
                    // drawn bar heights in pixels, as on screen
                    heights: [...gd.querySelectorAll(".trace.bars .point path")]
                        .map(bar => bar.getBoundingClientRect().height)};
    }
    return null;
}"""


def block(page, label: str):
    """The visible component block whose label reads exactly `label` (a file box, a plot)."""
    name = page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator(".block").filter(has=name).filter(visible=True)


def upload(page, label: str, path) -> None:
    """Put a file into the file box with this label and wait until the box shows it."""
    box = block(page, label)
    box.locator("input[type=file]").set_input_files(str(path))
    expect(box.get_by_text(path.stem, exact=True)).to_be_visible()


def clear(page, label: str) -> None:
    box = block(page, label)
    box.get_by_role("button", name="Clear", exact=True).click()
    expect(box.get_by_role("button", name="Click to upload or drop files")).to_be_visible()


def field(page, label: str):
    return page.get_by_label(label, exact=True).filter(visible=True)


def heatmaps(page) -> list:
    return page.evaluate(VISIBLE_HEATMAPS_JS)


def expected_parameter_counts(model_dir, num_labels: int, rank: int) -> tuple[int, int]:
    """(trainable, total) for LoRA on query and value: A (r x h) and B (h x r) per adapted layer (ModernBERT, the
    default architecture, fuses them with the key in Wqkv, h -> 3h: B is 3h x r), plus the pooler (ModernBERT: its
    head) and the classifier (trained; peft keeps a trainable copy beside the frozen original)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_dir, num_labels=num_labels)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    base = sum(p.numel() for p in model.parameters())
    modern = config.model_type == "modernbert"
    head = sum(p.numel() for n, p in model.named_parameters()
               if n.startswith(("head." if modern else "bert.pooler.", "classifier.")))
    per_layer = (rank * config.hidden_size + 3 * config.hidden_size * rank if modern  # Wqkv, h -> 3h
                 else 2 * (2 * rank * config.hidden_size))  # query and value, each h x h
    lora = config.num_hidden_layers * per_layer
    return lora + head, base + lora + head


def write_lines(path, source, lines: range):
    with source.open(encoding="utf-8") as fh:
        chosen = [line for i, line in enumerate(fh) if i in lines]
    path.write_text("".join(chosen), encoding="utf-8")
    return path


def labelled_rows(source, start: int, per_label: int) -> list[tuple[str, str]]:
    """`per_label` (text, label) pairs of each label from `<label> <text>` lines at and after `start`."""
    rows, seen = [], {}
    with source.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            label, text = line.rstrip("\n").split(" ", 1)
            if i >= start and seen.get(label, 0) < per_label:
                seen[label] = seen.get(label, 0) + 1
                rows.append((text, label))
    return rows


def write_csv(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_user_adds_dataset_finetunes_and_classifies(page, app_server, wikitext_slice, tmp_path):
    with failure_report(page, app_server, tmp_path):
        walk_through(page, app_server, wikitext_slice, tmp_path)


def pretrain_base_model(app_server, client, wikitext_slice) -> str:
    from gradio_client import handle_file

    corpus = client.predict([handle_file(str(wikitext_slice))], "wiki slice", api_name="/upload_corpus")
    run_id = client.predict({**TINY_RUN, "corpus_id": corpus["corpus_id"]}, api_name="/start_pretraining")["run_id"]
    status = wait_for(lambda: (s := client.predict(run_id, api_name="/run_status"))["status"] not in
                      ("queued", "running") and s, timeout=TRAINING_TIMEOUT_MS / 1000, interval=0.5,
                      message="the base model's pretraining")
    assert status["status"] == "completed", status
    return run_id


def walk_through(page, app_server, wikitext_slice, tmp_path) -> None:
    from gradio_client import Client

    from pretrain_studio.registry import Registry

    started = time.time()
    registry = Registry(app_server.workspace / "studio.db")
    client = Client(app_server.url, verbose=False)
    base_id = pretrain_base_model(app_server, client, wikitext_slice)

    # --- 1. Datasets: SST-2 train and validation files ---------------------------------
    train_file = write_lines(tmp_path / "sst_train.txt", SST2 / "stsa.binary.train", range(300))
    validation_file = write_lines(tmp_path / "sst_dev.txt", SST2 / "stsa.binary.dev", range(100))
    datasets_before = len(registry.list_datasets())
    open_app(page, app_server.url)
    open_tab(page, "Datasets")
    upload(page, "Training file", train_file)
    expect(combobox(page, "Text column")).to_have_value("text")  # the column pickers follow the file
    expect(combobox(page, "Label column")).to_have_value("label")
    upload(page, "Validation file (optional)", validation_file)
    field(page, "Dataset name").fill("sst2 slice")
    page.get_by_role("button", name="Add dataset").click()

    message = page.get_by_text(re.compile(r"^Added sst2 slice: ")).filter(visible=True)
    expect(message).to_be_visible(timeout=60_000)
    datasets = registry.list_datasets()
    assert len(datasets) == datasets_before + 1
    dataset = next(d for d in datasets if d["name"] == "sst2 slice")
    assert dataset["labels"] == ["0", "1"], dataset["labels"]
    splits = dataset["stats"]["splits"]
    assert splits == {"train": 300, "validation": 100}, splits
    expect(message).to_have_text("Added sst2 slice: train 300, validation 100 rows, 2 labels.")
    expect(page.get_by_text("2 labels: 0, 1")).to_be_visible()
    expect(page.get_by_text("Splits: train 300, validation 100")).to_be_visible()
    expect(combobox(page, "Dataset")).to_have_value("sst2 slice (400 rows, 2 labels)")

    # --- 2. Bad input: an empty label is refused, naming the file and the line --------------
    rows = labelled_rows(SST2 / "stsa.binary.dev", 100, 3)
    bad_rows = [list(r) for r in rows]
    bad_rows[2][1] = ""  # the 3rd data row: line 4, after the header
    bad = write_csv(tmp_path / "bad_labels.csv", ["text", "label"], bad_rows)
    clear(page, "Validation file (optional)")
    clear(page, "Training file")
    upload(page, "Training file", bad)
    expect(combobox(page, "Text column")).to_have_value("text")
    field(page, "Dataset name").fill("bad labels")
    page.get_by_role("button", name="Add dataset").click()
    toast = page.get_by_test_id("toast-body").filter(has_text="bad_labels.csv")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("Error")
    expect(toast).to_contain_text("empty or missing label on line 4")
    assert len(registry.list_datasets()) == datasets_before + 1
    assert "bad labels" not in [d["name"] for d in registry.list_datasets()]
    toast.get_by_role("button", name="Close", exact=True).click()

    # --- 3. Fine-tune: dataset, base model, LoRA; count parameters; launch ---------------
    open_tab(page, "Fine-tune")
    choose(page, "Dataset", "sst2 slice")
    choose(page, "Base model", base_id)
    lora = page.get_by_role("radio", name="LoRA", exact=True)
    lora.check()
    expect(lora).to_be_checked()
    expect(field(page, "LoRA rank")).to_have_value(str(LORA_RANK))
    page.get_by_role("button", name="Count parameters").click()
    trainable, total = expected_parameter_counts(app_server.workspace / "runs" / base_id / "model", 2, LORA_RANK)
    assert 0 < trainable < total
    expect(page.get_by_text(f"{trainable:,} of {total:,} parameters train ({trainable / total:.2%}).")).to_be_visible(
        timeout=60_000)

    for label, value in FINETUNE.items():
        box = field(page, label)
        box.fill(str(value))
        expect(box).to_have_value(str(value))
    page.get_by_role("button", name="Launch fine-tuning").click()

    # The app switches to Runs with the new run selected.
    expect(page.get_by_role("tab", name="Runs", selected=True)).to_be_visible()
    run_box = combobox(page, "Run")
    expect(run_box).to_have_value(RUN_ID)
    run_id = RUN_ID.search(run_box.input_value()).group(0)
    run = registry.get_run(run_id)
    assert run["kind"] == "finetune" and run_id != base_id
    config = run["config"]
    assert {k: config[k] for k in ("dataset_id", "base_model", "method", "max_steps", "eval_steps", "logging_steps",
                                   "batch_size", "max_seq_length", "lora_r")} == {
        "dataset_id": dataset["id"], "base_model": base_id, "method": "lora", "max_steps": 20, "eval_steps": 5,
        "logging_steps": 5, "batch_size": 16, "max_seq_length": 48, "lora_r": LORA_RANK}

    # --- 4. Runs: the plot grows, the run completes, the results appear --------------------
    # Once the status line names the new run, the plot is this run's (switching runs redraws it from zero;
    # before that it may still show the base model's pretraining curves).
    expect(page.get_by_text(re.compile(rf"{re.escape(run_id)} · \w+ on")).filter(visible=True).first).to_be_visible()
    # The plot gains points (or the run ends badly: then fail now, with its error, not after the timeout).
    wait_for(lambda: loss_points(page) > 0 or registry.get_run(run_id)["status"] in ENDED_BADLY,
             timeout=TRAINING_TIMEOUT_MS / 1000, interval=0.25, message="points in the plot")
    assert registry.get_run(run_id)["status"] not in ENDED_BADLY, registry.get_run(run_id)["error"]
    expect(page.get_by_text(re.compile(rf"{re.escape(run_id)} · completed on ")).filter(visible=True).first
           ).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    status = client.predict(run_id, api_name="/run_status")
    metric_rows = [r for r in registry.metrics_since(run_id) if r["name"] in ("train_loss", "eval_loss")]
    page.wait_for_function(f"({LOSS_POINTS_JS})() === {len(metric_rows)}")
    eval_steps = [r["step"] for r in metric_rows if r["name"] == "eval_loss"]
    assert {5, 10, 15, 20} <= set(eval_steps) <= {0, 5, 10, 15, 20}, eval_steps  # (0: the untrained head)

    tm, base = status["test_metrics"], status["baselines"]
    results = page.get_by_role("table").filter(has_text="fine-tuned (lora)").filter(visible=True)
    expect(results).to_be_visible()
    fine_tuned = results.get_by_role("row").filter(has_text="fine-tuned (lora)")
    expect(fine_tuned).to_contain_text(f"{tm['accuracy']:.4f}")
    expect(fine_tuned).to_contain_text(f"{tm['f1']:.4f}")
    expect(results.get_by_role("row").filter(has_text="linear probe")).to_contain_text(
        f"{base['linear_probe']['accuracy']:.4f}")
    expect(results.get_by_role("row").filter(has_text="majority class")).to_contain_text(
        f"{base['majority']['accuracy']:.4f}")
    expect(page.get_by_text(re.compile(r"^Results on the validation split \(100 examples\)"))).to_be_visible()
    expect(block(page, "Confusion matrix")).to_be_visible()
    page.wait_for_function(f"({VISIBLE_HEATMAPS_JS})().length === 1")
    (matrix,) = heatmaps(page)
    assert matrix == tm["confusion_matrix"] and sum(map(sum, matrix)) == 100
    if os.environ.get("PRETRAIN_STUDIO_SCREENSHOT"):
        page.wait_for_timeout(500)  # let plotly finish drawing
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # --- 5. Try / Classify: the bars are the model's real answer --------------------------
    open_tab(page, "Try")
    choose(page, "Classifier (fine-tuning run)", run_id)
    field(page, "Text").fill(SENTENCE)
    page.get_by_role("button", name="Classify", exact=True).click()
    page.wait_for_function(f"({PROBABILITY_BARS_JS})() !== null", timeout=60_000)
    bars = page.evaluate(PROBABILITY_BARS_JS)
    answer = client.predict(run_id, SENTENCE, "", api_name="/classify")
    assert sorted(bars["labels"]) == ["0", "1"], bars
    shown = dict(zip(bars["labels"], bars["values"]))
    assert shown == pytest.approx(answer["scores"], abs=1e-4), (shown, answer)
    assert answer["label"] == max(shown, key=shown.get)
    # The bars are drawn tall enough to see (a chart only a few pixels high once hid them).
    assert len(bars["heights"]) == 2 and min(bars["heights"]) >= 10, bars["heights"]

    # --- 6. Try / Predict a file: downloadable predictions, accuracy, confusion matrix -----
    reviews = write_csv(tmp_path / "six_reviews.csv", ["text", "label"], rows)
    upload(page, "File of texts", reviews)
    field(page, "Text column").fill("text")
    field(page, "Label column (optional)").fill("label")
    page.get_by_role("button", name="Predict file").click()
    # The file box lists the predictions file by name; its size is the download link.
    listed = block(page, "Predictions (CSV)").get_by_role("row", name=re.compile(r"^six_reviews-pred-[\w-]+\.csv "))
    expect(listed).to_be_visible(timeout=60_000)
    download = listed.get_by_role("link")
    response = page.request.get(download.get_attribute("href"))
    assert response.ok, response.status
    predicted = list(csv.DictReader(io.StringIO(response.body().decode("utf-8-sig"))))  # a BOM, for Excel
    assert [(r["text"], r["label"]) for r in predicted] == rows
    assert {"predicted", "confidence", "p_0", "p_1"} <= set(predicted[0])
    saved = list((app_server.workspace / "predictions").glob("six_reviews-*.csv"))
    assert len(saved) == 1 and saved[0].read_bytes() == response.body()
    accuracy = sum(r["predicted"] == r["label"] for r in predicted) / len(predicted)
    expect(page.get_by_text(f"Predicted 6 rows: accuracy {accuracy:.4f}")).to_be_visible()
    page.wait_for_function(f"({VISIBLE_HEATMAPS_JS})().length === 1")
    (matrix,) = heatmaps(page)
    assert sum(map(sum, matrix)) == 6

    assert page.js_errors == [], page.js_errors
    finished = registry.get_run(run_id)
    print(f"fine-tuning browser test took {time.time() - started:.1f}s; the fine-tuning run trained for "
          f"{finished['finished_at'] - finished['started_at']:.1f}s")

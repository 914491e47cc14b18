"""What a run's numbers mean, as the UI shows them: the fine-tuning verdict (results, run page, runs table, API),
the pretraining no-context line (loss figure, progress line), the downstream checks (figure, sentences), the
pretraining form's downstream default and the small-corpus warning, in English and Chinese.

Runs are registry rows written here (no training): the engine's side is tests/training/."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from pretrain_studio.ui.api import register_api
from pretrain_studio.studio import SAMPLE_DATASET_NAME, Studio
from pretrain_studio.training.verdict import fine_tuning_verdict
from pretrain_studio.ui import i18n
from pretrain_studio.ui.corpus_tab import describe_corpus, small_corpus_warning
from pretrain_studio.ui.i18n import use_language
from pretrain_studio.ui.monitor_tab import build_monitor_tab, progress_text, results_text
from pretrain_studio.ui.plots import downstream_figure, loss_figure
from pretrain_studio.ui.quality import downstream_lines, translate_advice, verdict_line
from pretrain_studio.ui.run_page import quality_markdown
from pretrain_studio.ui.runs_table_tab import runs_frame


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    studio = Studio(tmp_path_factory.mktemp("quality") / "workspace", start_worker=False)
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def sample_id(studio):
    return next(d["dataset_id"] for d in studio.list_datasets() if d["name"] == SAMPLE_DATASET_NAME)


def make_run(studio, run_id, kind, *, status="completed", config=None, info=None, metrics=()):
    studio.registry.create_run(run_id, name=run_id, kind=kind, config=config or {}, corpus_id=None, parent_id=None,
                               device="cpu", max_steps=0, status=status)
    if info:
        studio.registry.update_run(run_id, info=info)
    for step, values in metrics:
        studio.registry.add_metrics(run_id, step, values)
    return run_id


def finetune_info(score: float, probe: float, majority: float = 0.34) -> dict:
    verdict = fine_tuning_verdict(score, majority, probe, method="lora", learning_rate=5e-4, steps=72,
                                  hidden_size=128, pooling="cls", head_init="random")
    per_class = {name: {"precision": 0.5, "recall": 0.5, "support": 16} for name in ("A", "B", "C")}
    return {"verdict": verdict, "score_split": "test",
            "test_metrics": {"accuracy": score, "f1": score - 0.02, "examples": 48, "per_class": per_class,
                             "confusion_matrix": [[5, 5, 6]] * 3, "labels": ["A", "B", "C"]},
            "baselines": {"majority": {"accuracy": majority, "f1": 0.17, "predicts": "A"},
                          "linear_probe": {"accuracy": probe, "f1": probe - 0.01}}}


def traces(figure) -> dict[str, tuple[list, list]]:
    return {trace.name: (list(trace.x), list(trace.y)) for trace in figure.data}


# --- fine-tuning: the verdict -----------------------------------------------------------------------------------

def test_verdict_of_a_below_probe_and_an_above_both_run(studio):
    below = make_run(studio, "ft-below-probe", "finetune", config={"method": "lora"},
                     info=finetune_info(score=0.60, probe=0.66))
    above = make_run(studio, "ft-above-both", "finetune", config={"method": "full"},
                     info=finetune_info(score=0.80, probe=0.66))
    stuck = make_run(studio, "ft-majority", "finetune", config={"method": "full"},
                     info=finetune_info(score=0.34, probe=0.66))

    text = results_text(studio.run_status(below))
    assert "⚠ **Not above the linear probe**: a logistic regression on the frozen base model's features scores " \
           "0.660" in text
    assert "train longer (this run took 72 steps)" in text and "pooling=mean" in text
    assert "✓ Above the majority class and the linear probe." in results_text(studio.run_status(above))
    assert quality_markdown(studio.get_run(stuck)).startswith("⚠ **Not above the majority class**")
    with use_language("zh"):
        chinese = results_text(studio.run_status(below))
        assert "✓ 高于多数类基线和线性探针。" in results_text(studio.run_status(above))
    assert "⚠ **没有超过线性探针**：在冻结的基础模型特征上做逻辑回归，得分 0.660，不低于这次微调（0.600）" in chinese
    assert "训练更久（这次运行训练了 72 步），或提高学习率（本次为 0.0005）" in chinese
    assert "pooling=mean" in chinese and "head_init=linear_probe" in chinese

    # The runs table marks it; the API carries the verdict whole.
    rows = [r for r in studio.list_runs() if r["run_id"] in (below, above, stuck)]
    names = {r["run_id"]: r["name"] for r in rows}
    frame = runs_frame(rows, names).set_index("run id")
    assert frame.loc[below, "verdict"] == "⚠ below probe"
    assert frame.loc[above, "verdict"] == "✓ above probe"
    assert frame.loc[stuck, "verdict"] == "⚠ majority"
    with use_language("zh"):
        chinese_frame = runs_frame(rows, names).set_index("运行 ID")
    assert chinese_frame.loc[below, "结论"] == "⚠ 低于探针"

    with gr.Blocks() as demo:
        register_api(studio)
    get_run = next(f.fn for f in demo.fns.values() if f.api_name == "get_run")
    verdict = get_run(below)["info"]["verdict"]
    assert verdict == {"above_majority": True, "above_linear_probe": False, "advice": verdict["advice"]}
    assert verdict["advice"].startswith("a logistic regression")
    assert studio.run_status(below)["info"]["verdict"] == verdict


def test_advice_clauses_nobody_translated_stay_english():
    advice = "train longer (this run took 5 steps), or raise the learning rate (it was 1e-05); a brand new clause."
    assert translate_advice(advice, "zh") == "训练更久（这次运行训练了 5 步），或提高学习率（本次为 1e-05）；a brand new clause。"
    assert translate_advice(advice, "en") == advice
    assert verdict_line({}) == ""


# --- pretraining: the no-context line ---------------------------------------------------------------------------

@pytest.fixture
def poll(studio):
    """The function the Live view's timer calls (no browser)."""
    with gr.Blocks() as demo:
        build_monitor_tab(studio)
    timer = next(b for b in demo.blocks.values() if isinstance(b, gr.Timer))
    return next(f.fn for f in demo.fns.values() if (timer._id, "tick") in f.targets)


def fresh():
    return {"run_id": None, "after_id": 0, "series": {}}


def test_the_no_context_line_is_on_the_loss_figure_and_in_the_progress_line(studio, poll):
    run = make_run(studio, "mlm-no-context", "pretrain", status="running", info={"no_context_loss": 6.0},
                   metrics=[(0, {"eval_loss": 9.0}), (10, {"train_loss": 7.0, "learning_rate": 1e-3}),
                            (20, {"train_loss": 5.8, "learning_rate": 5e-4, "eval_loss": 5.5, "perplexity": 245.0})])
    text, figure, *_, checks, state, _ = poll(run, fresh(), False)
    drawn = traces(figure)
    assert drawn["no context (unigram)"] == ([0, 20], [6.0, 6.0])
    assert "eval loss 5.5 (0.50 nats below the no-context line)" in text
    assert checks.visible is False  # no downstream checks: no second figure

    with use_language("zh"):
        series = {"eval_loss": [(0, 9.0), (20, 6.5)]}
        chinese = progress_text(studio.run_status(run), series)
        assert "无上下文（一元词频）" in traces(loss_figure(series, no_context=6.0))
    assert "比无上下文基线高 0.50 nats" in chinese
    assert "no context (unigram)" not in traces(loss_figure(series))  # a run without the line: none drawn
    page = quality_markdown(studio.get_run(run))
    assert page.startswith("Held-out loss 5.500 nats: **0.50 nats below** the no-context line (6.000 nats")


# --- pretraining: the downstream checks -------------------------------------------------------------------------

def downstream_metrics(dataset_id, points):
    return [(step, {f"downstream_accuracy/{dataset_id}": accuracy, f"downstream_probe/{dataset_id}": probe,
                    "eval_loss": 6.0 - step / 1000})
            for step, accuracy, probe in points]


def summary(points, margin=0.01):
    (_, start, _), (final_step, final, _) = points[0], points[-1]
    best = max(points, key=lambda p: p[1])
    return {"start": start, "best": best[1], "best_step": best[0], "final": final, "final_step": final_step,
            "paid_off": final > start + margin}


def test_downstream_figure_and_sentences_while_not_yet_better(studio, poll, sample_id):
    points = [(0, 0.625, 0.60), (500, 0.583, 0.59)]
    run = make_run(studio, "mlm-not-yet", "pretrain", status="running", metrics=downstream_metrics(sample_id, points),
                   info={"downstream": {sample_id: summary(points)}, "downstream_seconds": 193.0,
                         "train_seconds": 1000.0, "no_context_loss": 6.2})
    text, figure, *_, checks, state, _ = poll(run, fresh(), False)
    assert not any("downstream" in name or "Sample" in name for name in traces(figure))  # not on the loss figure
    assert checks.visible is True
    drawn = {trace["name"]: trace for trace in json.loads(checks.value["plot"])["data"]}
    assert drawn["no pretraining (random weights)"]["y"] == [0.625, 0.625]
    assert drawn[f"{SAMPLE_DATASET_NAME}: fine-tuned"]["x"] == [0, 500]
    assert drawn[f"{SAMPLE_DATASET_NAME}: linear probe"]["y"] == [0.60, 0.59]
    assert f"**{SAMPLE_DATASET_NAME}**: not yet better than random weights (start 0.625, now 0.583)" in text
    assert "Downstream checks took 193 s (19% of the run)." in text
    assert "What usually helps" not in text  # still running

    # Nothing new: the downstream figure is not redrawn (a redraw resets its zoom).
    state["drawn_at"] = 0
    studio.registry.add_metrics(run, 600, {"train_loss": 5.0})
    *_, checks, state, _ = poll(run, state, False)
    assert checks == gr.skip()

    # The run ends without paying off: what usually helps.
    studio.registry.update_run(run, status="completed")
    ended = downstream_lines(studio.run_status(run))
    assert ended[0] == f"**{sample_id}**: not better than random weights (start 0.625, final 0.583)"
    assert ended[-1] == ("What usually helps: more text, a longer budget, or continue pretraining an existing encoder "
                         "instead of starting from scratch.")
    with use_language("zh"):
        chinese = downstream_lines(studio.run_status(run), {sample_id: "样例"})
        figure = downstream_figure({f"downstream_accuracy/{sample_id}": points[:1]}, "未预训练（随机权重）")
    assert chinese[0] == "**样例**：没有超过随机权重（起点 0.625，最终 0.583）"
    assert chinese[1] == "下游检查用时 193 秒（占运行的 19%）。" and chinese[2].startswith("通常有帮助的做法：更多文本")
    assert "未预训练（随机权重）" in traces(figure) and figure.layout.yaxis.title.text == "验证集准确率"


def test_downstream_paid_off_and_the_base_model_line(studio, sample_id):
    points = [(0, 0.625, 0.60), (1500, 0.60, 0.61), (3000, 0.649, 0.63)]
    run = make_run(studio, "mlm-paid-off", "pretrain", config={"base_model": "run-base"},
                   metrics=downstream_metrics(sample_id, points),
                   info={"downstream": {sample_id: summary(points)}, "downstream_seconds": 30.0})
    page = studio.get_run(run)
    text = quality_markdown(page, {sample_id: "who wrote it"})
    assert "**who wrote it**: +2.4 points over the base model at step 3,000 (0.649, start 0.625)" in text
    assert "What usually helps" not in text
    with use_language("zh"):
        assert "**who wrote it**：第 3,000 步比基础模型高 2.4 个百分点" in quality_markdown(page, {sample_id: "who wrote it"})
    series = {f"downstream_accuracy/{sample_id}": [(s, a) for s, a, _ in points]}
    assert traces(downstream_figure(series, "base model"))["base model"] == ([0, 3000], [0.625, 0.625])
    row = next(r for r in studio.list_runs() if r["run_id"] == run)
    assert runs_frame([row], {}).loc[0, "verdict"] == "✓ beats start"


# --- the forms and the corpus page ---------------------------------------------------------------------------------

def test_the_pretraining_form_checks_the_sample_dataset_by_default(studio, sample_id):
    from pretrain_studio.ui.finetune_tab import build_finetune_tab
    from pretrain_studio.ui.pretrain_tab import build_pretrain_tab

    with gr.Blocks() as blocks:
        pretrain, finetune = build_pretrain_tab(studio), build_finetune_tab(studio)
    downstream = pretrain.inputs["downstream_datasets"]
    assert downstream.multiselect and downstream.value == [sample_id]
    assert sample_id in [value for _, value in downstream.choices]
    assert pretrain.inputs["time_budget_minutes"].value == 0 and pretrain.inputs["downstream_eval_steps"].value == 0
    values = {name: component.value for name, component in pretrain.inputs.items() if component.value is not None}
    assert studio.pretrain_config(values).downstream_datasets == [sample_id]
    assert finetune.inputs["pooling"].value == "mean" and finetune.inputs["head_init"].value == "linear_probe"
    assert finetune.inputs["learning_rate"].label == "Learning rate (0 = auto)"
    assert finetune.inputs["num_epochs"].label == "Epochs (0 = auto)"
    assert finetune.inputs["time_budget_minutes"].value == 0  # off: fine-tuning ends by steps or epochs

    entries = i18n.registered(blocks)
    updates = {id(component): update for (component, _, _), update in zip(entries, i18n.relabel(entries, "zh"))}
    assert updates[id(downstream)]["label"] == "下游检查"
    assert updates[id(downstream)]["info"].startswith("预训练过程中用来检查模型的带标签数据集")
    assert updates[id(finetune.inputs["pooling"])]["info"].startswith("分类器如何看文本")
    # The fine-tuning budget's help is its own (best checkpoint, adalora), not the pretraining one's.
    assert updates[id(finetune.inputs["time_budget_minutes"])]["info"].startswith("按墙钟时间微调")
    assert updates[id(pretrain.inputs["time_budget_minutes"])]["info"].startswith("按墙钟时间训练")
    assert updates[id(finetune.inputs["learning_rate"])]["label"] == "学习率（0 = 自动）"


def test_a_small_corpus_is_warned_about_before_launch(studio):
    corpus_id = studio.list_corpora()[0]["corpus_id"]  # the sample: some 33,000 words
    summary, _, _ = describe_corpus(studio, corpus_id)
    words = f"{studio.list_corpora()[0]['words']:,}"
    assert f"⚠ **Small corpus**: {words} words, under 5,000,000." in summary
    assert "measured: bench/quality_per_hour.py" in summary and "Continue pretraining an existing encoder" in summary
    with use_language("zh"):
        chinese, _, _ = describe_corpus(studio, corpus_id)
    assert f"⚠ **语料较小**：{words} 个词，少于 5,000,000。" in chinese
    assert small_corpus_warning(5_000_000) == ""

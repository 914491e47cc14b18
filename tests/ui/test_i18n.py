"""The UI in English and 简体中文: every key in both languages, every config field's help text in both, and
handlers, errors and plots that write in the browser tab's language (English without one: API, CLI, tests).

The browser side (the switch, and the choice kept across a reload) is tests/e2e/test_browser_language.py.
"""

from __future__ import annotations

import re
import string
from dataclasses import fields

import gradio as gr
import pytest
from gradio.context import LocalContext

from pretrain_studio.config import FinetuneConfig, PretrainConfig, field_docs
from pretrain_studio.studio import Studio
from pretrain_studio.ui import i18n
from pretrain_studio.ui.i18n import current_language, remember_language, t, translate_error, use_language
from pretrain_studio.ui.locales import en, zh
from pretrain_studio.ui.plots import confusion_figure, loss_figure

CJK = re.compile(r"[\u4e00-\u9fff]")
LANGS = {"en": en.MESSAGES, "zh": zh.MESSAGES}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# --- the translations ------------------------------------------------------------------------------------------

def test_every_key_is_in_both_languages_with_the_same_placeholders():
    assert set(en.MESSAGES) - set(zh.MESSAGES) == set(), "keys missing in zh.py"
    assert set(zh.MESSAGES) - set(en.MESSAGES) == set(), "keys in zh.py that en.py does not have"
    for lang, messages in LANGS.items():
        empty = [key for key, text in messages.items() if not isinstance(text, str) or not text.strip()]
        assert empty == [], f"empty texts in {lang}"
    differing = {key: (placeholders(en.MESSAGES[key]), placeholders(zh.MESSAGES[key])) for key in en.MESSAGES
                 if placeholders(en.MESSAGES[key]) != placeholders(zh.MESSAGES[key])}
    assert differing == {}


def test_chinese_texts_are_chinese():
    # Keys whose text is a name in both languages (LoRA, torch.compile, ...) may be the same; the rest is not.
    same = {key for key in en.MESSAGES if en.MESSAGES[key] == zh.MESSAGES[key]}
    assert same <= {"method.lora", "method.adalora", "method.ia3", "finetune.lora_box", "label.lora_alpha",
                    "label.lora_dropout", "label.dropout", "label.torch_compile", "try.top_k", "col.#"}
    untranslated = [key for key in zh.MESSAGES if key not in same and not CJK.search(zh.MESSAGES[key])
                    and key not in ("error.why", "batch.machines")]
    assert untranslated == []


@pytest.mark.parametrize("config", [PretrainConfig, FinetuneConfig])
def test_every_config_field_has_a_help_text_in_both_languages(config):
    docs = field_docs(config)
    for f in fields(config):
        key = i18n.field_key(f.name, config.kind)
        assert key in en.MESSAGES and key in zh.MESSAGES, f"no help text for {config.__name__}.{f.name}"
        assert en.MESSAGES[key] == docs[f.name], f"{key}: English help is not the field's docstring"
        assert CJK.search(zh.MESSAGES[key]), f"{key}: Chinese help is not Chinese"
    # The field of Chinese whole-word masking (label next to "Whole-word masking") is there in both.
    for key in ("field.chinese_whole_word_mask", "label.chinese_whole_word_mask"):
        assert key in en.MESSAGES and CJK.search(zh.MESSAGES[key])


# --- the language of a handler's output ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    """Both launch forms on a Blocks over a workspace with the sample corpus (no worker: nothing trains)."""
    from pretrain_studio.ui.finetune_tab import build_finetune_tab
    from pretrain_studio.ui.pretrain_tab import build_pretrain_tab

    studio = Studio(tmp_path_factory.mktemp("i18n") / "workspace", start_worker=False)
    with gr.Blocks() as blocks:
        tabs = {"pretrain": build_pretrain_tab(studio), "finetune": build_finetune_tab(studio)}
    yield studio, blocks, tabs
    studio.close()


def handler(blocks, name: str):
    fn = next(f for f in blocks.fns.values() if f.fn.__qualname__ == name)
    return fn.fn, fn.inputs


def form_values(tabs, kind, components, **changes):
    names = {id(c): n for n, c in tabs[kind].inputs.items()}
    return [changes.get(names[id(c)], c.value) for c in components]


def test_launch_error_is_translated_keeping_field_and_value(forms):
    _, blocks, tabs = forms
    launch, components = handler(blocks, "build_pretrain_tab.<locals>.on_launch")
    form = form_values(tabs, "pretrain", components, batch_size=0)
    with pytest.raises(gr.Error) as english:
        launch(*form)
    assert english.value.message == "batch_size: must be at least 1 (got 0)"
    with use_language("zh"), pytest.raises(gr.Error) as chinese:
        launch(*form)
    assert chinese.value.message == "batch_size：不能小于 1（当前为 0）"


def test_launch_report_and_effective_batch_follow_the_session_language(forms):
    """The real path: the switch records the language of a Gradio session, and a handler run for a request of
    that session (Gradio sets LocalContext.request around it) writes in it; another session stays English."""
    studio, blocks, tabs = forms
    launch, components = handler(blocks, "build_pretrain_tab.<locals>.on_launch")
    form = form_values(tabs, "pretrain", components, corpus_id=studio.list_corpora()[0]["corpus_id"])
    effective = next(f.fn for f in blocks.fns.values() if f.fn.__qualname__ == "scale_out_inputs.<locals>.update")

    token = LocalContext.request.set(gr.Request(session_hash="chinese-tab"))
    try:
        assert remember_language("zh") == "zh" and current_language() == "zh"
        report, run_id = launch(*form)
        assert report == f"已启动运行 `{run_id}`（排队中）。"
        assert effective(8, 4, 2, 1) == "有效批大小：每个优化步 **64** = 每设备 8 x 2 个进程 x 4 步梯度累积"
        LocalContext.request.set(gr.Request(session_hash="another-tab"))
        report, second = launch(*form)
        assert report == f"Launched run `{second}` (queued)."
        assert effective(8, 4, 2, 1) == ("Effective batch: **64** per optimizer step = 8 per device x 2 processes x "
                                         "4 accumulation steps")
    finally:
        LocalContext.request.reset(token)
    assert current_language() == "en"  # no request: the API's and the CLI's language


def test_fine_tune_form_error_in_chinese(forms):
    _, blocks, tabs = forms
    count, components = handler(blocks, "build_finetune_tab.<locals>.on_count")
    form = form_values(tabs, "finetune", components, dataset_id="")
    with use_language("zh"), pytest.raises(gr.Error) as err:
        count(*form)
    assert err.value.message == "dataset_id：请选择一个带标签的数据集"


def test_engine_errors_are_translated_by_key_keeping_field_and_values():
    from pretrain_studio.config import ConfigError
    from pretrain_studio.data.readers import CorpusError
    from pretrain_studio.errors import StudioError

    def error_of(values):
        with pytest.raises(ConfigError) as caught:
            PretrainConfig.from_dict({"corpus_id": "c", **values}).validate()
        return caught.value

    rate = error_of({"learning_rate": -1})
    assert str(rate) == "learning_rate: must be at least 0 (got -1): give a rate above 0, or 0 for the measured default"
    assert translate_error(rate, "zh") == ("learning_rate：不能小于 0（当前为 -1）："
                                           "give a rate above 0, or 0 for the measured default")
    assert translate_error(error_of({"batch_size": "abc"}), "zh") == "batch_size：'abc' 不是整数"
    assert translate_error(error_of({"precision": "fp8"}), "zh") == "precision：请从 auto, fp32, bf16, fp16 中选择"
    # Through a service, a reader's error keeps its key.
    unsupported = StudioError.of(CorpusError(key="error.unsupported_type", file="notes.docx", type=".docx",
                                             expected=".txt, .csv"))
    assert str(unsupported) == "notes.docx: unsupported file type '.docx' (expected .txt, .csv)"
    assert translate_error(unsupported, "zh") == "notes.docx：不支持的文件类型“.docx”（支持 .txt, .csv）"
    # Rewording the English changes nothing in Chinese: the key is what is translated.
    assert translate_error(rate, "en") == str(rate)
    odd = StudioError("something nobody translated")
    assert translate_error(odd, "zh") == str(odd) and translate_error("a run's stored error", "zh") == "a run's stored error"


def test_every_engine_error_key_has_a_chinese_template_with_its_placeholders():
    from pretrain_studio.errors import MESSAGES

    for key, english in MESSAGES.items():
        assert key in zh.MESSAGES and CJK.search(zh.MESSAGES[key]), f"{key}: no Chinese template"
        assert placeholders(zh.MESSAGES[key]) == placeholders(english), key


def test_plot_titles_follow_the_language():
    series = {"train_loss": [(1, 3.0), (2, 2.5)], "eval_loss": [(2, 2.7)], "learning_rate": [(1, 1e-3), (2, 5e-4)]}
    english = loss_figure(series)
    assert english.layout.xaxis.title.text == "step"
    assert [trace.name for trace in english.data] == ["train loss", "eval loss", "learning rate"]
    with use_language("zh"):
        chinese = loss_figure(series)
        matrix = confusion_figure([[3, 1], [0, 4]], ["正面", "负面"])
    assert chinese.layout.xaxis.title.text == "步数" and chinese.layout.yaxis.title.text == "损失"
    assert [trace.name for trace in chinese.data] == ["训练损失", "验证损失", "学习率"]
    assert matrix.layout.title.text == "混淆矩阵" and list(matrix.data[0].x) == ["正面", "负面"]


# --- relabelling the whole app -----------------------------------------------------------------------------------

def test_relabel_turns_tabs_labels_help_and_choices_chinese(tmp_path):
    from pretrain_studio.ui.app import build_app

    studio = Studio(tmp_path / "workspace", start_worker=False)
    try:
        app = build_app(studio)
        entries = i18n.registered(app)
        english = {id(component): component for component, _, _ in entries}
        updates = {id(component): update for (component, _, _), update in zip(entries, i18n.relabel(entries, "zh"))}
    finally:
        studio.close()

    def update_of(cls, **props):
        component = next(c for c in english.values() if isinstance(c, cls)
                         and all(getattr(c, k, None) == v for k, v in props.items()))
        return updates[id(component)]

    assert update_of(gr.Tab, label="Pretrain")["label"] == "预训练"
    assert update_of(gr.Tab, label="Fine-tune")["label"] == "微调"
    rate = update_of(gr.Number, label="Learning rate", info=field_docs(PretrainConfig)["learning_rate"])
    assert rate == {"__type__": "update", "label": "学习率", "info": (
        "峰值学习率（AdamW，线性衰减）；0 = 实测的默认值：从零训练 tiny 和 mini 为 1e-3，更大的规模为 5e-4，继续预训练已有模型为 1e-4。")}
    assert update_of(gr.Button, value="Launch pretraining")["value"] == "开始预训练"
    method = update_of(gr.Radio, label="Method")
    assert ("全参数微调", "full") in method["choices"]
    # Every registered text changes except names that are the same in both languages.
    unchanged = [(type(c).__name__, getattr(c, "label", None)) for c in english.values()
                 if all(getattr(c, prop, None) == text for prop, text in updates[id(c)].items() if prop != "__type__")]
    assert len(unchanged) <= 6, unchanged
    assert t("tab.pretrain", "zh") == "预训练"

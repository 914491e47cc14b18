"""End-to-end browser test of the language switch: English | 简体中文 in the header of a real `python app.py`.

A user opens the app (English), picks 简体中文: the tab names, the form labels, the corpus summary a handler
wrote and an error toast are Chinese; a reload keeps Chinese (the choice is stored in the browser), and
switching back gives English, also after a reload. Nothing trains: the launch is refused for its setting.

Browser: Chromium at /usr/bin/chromium (or $CHROMIUM), driven by Playwright; skipped when either is
missing (a failure with CI=true).

    .venv/bin/python -m pytest tests/e2e/test_browser_language.py -q

Set PRETRAIN_STUDIO_SCREENSHOT=1 to also write assets/screenshot-en.png and assets/screenshot-zh.png (the
Pretrain tab at 1400x900, for the READMEs); normal runs write nothing into the repo.
"""

from __future__ import annotations

import os

import pytest
from conftest import REPO
from test_browser import chromium_page, expect  # skips without playwright

pytestmark = pytest.mark.e2e

SCREENSHOTS = {"en": REPO / "assets" / "screenshot-en.png", "zh": REPO / "assets" / "screenshot-zh.png"}


@pytest.fixture(scope="module")
def page():
    """A Chromium page of the screenshots' size (1400x900) in an English-language browser."""
    yield from chromium_page(viewport={"width": 1400, "height": 900}, locale="en-US")


def tab(page, name: str, selected: bool | None = None):
    return page.get_by_role("tab", name=name, exact=True, **({} if selected is None else {"selected": selected}))


def visible_label(page, text: str):
    return page.get_by_label(text, exact=True).filter(visible=True)


def switch_to(page, language: str) -> None:
    page.get_by_role("radio", name=language, exact=True).check()


def screenshot(page, lang: str) -> None:
    if os.environ.get("PRETRAIN_STUDIO_SCREENSHOT") == "1":
        page.mouse.move(0, 0)
        page.wait_for_timeout(500)  # let the relabelled widgets settle before the picture
        page.screenshot(path=str(SCREENSHOTS[lang]))


def test_switch_to_chinese_is_remembered_and_back_to_english(page, app_server):
    page.goto(app_server.url)
    # English first (a new browser): the English tabs, the corpus summary in English.
    expect(page.get_by_role("button", name="Add corpus")).to_be_visible()
    expect(page.get_by_text("documents ·", exact=False).filter(visible=True).first).to_be_visible()
    expect(page.get_by_role("radio", name="English", exact=True)).to_be_checked()

    switch_to(page, "简体中文")
    expect(tab(page, "预训练")).to_be_visible()
    for name in ("语料", "数据集", "微调", "运行", "试用"):
        expect(tab(page, name)).to_be_visible()
    expect(tab(page, "Pretrain")).to_have_count(0)
    expect(page.get_by_role("button", name="添加语料")).to_be_visible()
    # Text a handler wrote (the corpus summary) is written again in Chinese.
    expect(page.get_by_text("篇文档 ·", exact=False).filter(visible=True).first).to_be_visible()

    tab(page, "预训练").click()
    expect(tab(page, "预训练", selected=True)).to_be_visible()
    expect(visible_label(page, "学习率")).to_be_visible()
    expect(page.get_by_text("峰值学习率（AdamW，线性衰减）；0 = 实测的默认值", exact=False).filter(visible=True)).to_be_visible()
    expect(page.get_by_text("有效批大小：每个优化步", exact=False).filter(visible=True)).to_be_visible()
    screenshot(page, "zh")
    # An error from the engine, translated with its field name and value; nothing is launched.
    rate = visible_label(page, "学习率")
    rate.fill("-0.001")
    rate.press("Tab")
    page.get_by_role("button", name="开始预训练").click()
    toast = page.get_by_test_id("toast-body").filter(has_text="learning_rate：不能小于 0（当前为 -0.001）")
    expect(toast).to_be_visible()  # (its heading, "Error", is Gradio's own, in the browser's language)

    # A reload keeps Chinese: the choice is stored in this browser.
    page.reload()
    expect(page.get_by_role("radio", name="简体中文", exact=True)).to_be_checked()
    expect(tab(page, "预训练")).to_be_visible()
    expect(page.get_by_role("button", name="添加语料")).to_be_visible()
    expect(page.get_by_text("篇文档 ·", exact=False).filter(visible=True).first).to_be_visible()

    switch_to(page, "English")
    expect(tab(page, "Pretrain")).to_be_visible()
    expect(tab(page, "预训练")).to_have_count(0)
    tab(page, "Pretrain").click()
    expect(visible_label(page, "Learning rate")).to_be_visible()
    expect(page.get_by_role("button", name="Launch pretraining")).to_be_visible()
    screenshot(page, "en")
    page.reload()
    expect(page.get_by_role("radio", name="English", exact=True)).to_be_checked()
    expect(tab(page, "Corpora")).to_be_visible()
    expect(page.get_by_role("button", name="Add corpus")).to_be_visible()
    # The English page after a reload is the one built: no Chinese label came back.
    expect(tab(page, "语料")).to_have_count(0)

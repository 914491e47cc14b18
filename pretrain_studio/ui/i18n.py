"""The web UI in English or 简体中文: `t(key)` for text, `widget(...)` for labelled components, the switch's wiring.

Why not Gradio's own i18n (`gr.I18n`, `launch(i18n=...)`), from reading Gradio 6.31's source:
- its frontend picks the locale from `navigator.language` once per page load (core `setupi18n`); the only
  way to change it is the Settings panel behind the footer's "Settings" link, and that choice is not stored
  (a reload goes back to the browser's language), so it cannot be "remembered in the browser";
- it translates static strings only ("not values in the backend", `Blocks.launch` docstring): the Markdown
  our handlers write, gr.Error/gr.Info texts and plot titles would stay English;
- a label built as `gr.I18n(...)("key")` is an `I18nData` object, not the English text, so the tests and
  the code that find components by their label would no longer find them.

So the language is an explicit switch (a Radio in the header) kept in a `gr.BrowserState` (localStorage,
so a reload or a restart of the app keeps it), and everything is translated on the server:
- components are built in English (`widget` registers which of their properties come from which key) and,
  when the language is not English, one event updates all of them (labels, help texts, placeholders,
  button texts, tab names, choices, static Markdown);
- handlers ask `t(key)` without being passed the language: the switch and the page load record the
  language of the browser tab's Gradio session (`remember_language`), and `current_language()` reads the
  session of the request being handled (Gradio sets `LocalContext.request` around every handler). Handlers
  keep their inputs, so the API endpoints and everything that calls a handler directly stay as they are;
  without a session (API clients, tests, the CLI) the language is English;
- engine errors carry a key and parameters (errors.py) and are translated by key (`translate_error`),
  keeping the field name and the values; an error without a key stays English.

Translations live in one module per language (`locales/en.py`, `locales/zh.py`): plain dicts key -> text
with `{placeholders}` filled by `str.format`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable

import gradio as gr

from .locales import en, zh

LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT = "en"
CATALOGS: dict[str, dict[str, str]] = {"en": en.MESSAGES, "zh": zh.MESSAGES}
STORAGE_KEY = "pretrain-studio-language"
# BrowserState encrypts what it stores with this; a fixed value (the language is not a secret) lets the choice
# outlive a restart of the app, which a random per-start secret would not.
STORAGE_SECRET = "pretrain-studio-ui-language"
MAX_SESSIONS = 10_000  # languages remembered per Gradio session; ~100 bytes each, oldest forgotten first

_forced: ContextVar[str | None] = ContextVar("pretrain_studio_language", default=None)
_sessions: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()
_ENTRIES = "_pretrain_studio_i18n"  # attribute on the Blocks being built: the components to relabel
_HOOKS = "_pretrain_studio_i18n_hooks"  # ... and the handlers to run again after a switch


# --- which language ----------------------------------------------------------------------------------------

def normalise(lang: str | None) -> str:
    """'zh', 'zh-CN', '简体中文' -> 'zh'; anything unknown -> English."""
    text = (lang or "").strip()
    for code, name in LANGUAGES.items():
        if text == name or text.split("-")[0].lower() == code:
            return code
    return DEFAULT


def _session_hash() -> str | None:
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None)


def current_language() -> str:
    """The language of what is being handled: a `use_language` block, else the browser tab's choice, else English."""
    forced = _forced.get()
    if forced:
        return forced
    session = _session_hash()
    if session:
        with _lock:
            return _sessions.get(session, DEFAULT)
    return DEFAULT


def remember_language(lang: str | None) -> str:
    """Record the language of the current Gradio session (called by the switch and on page load)."""
    lang = normalise(lang)
    session = _session_hash()
    if session:
        with _lock:
            _sessions[session] = lang
            _sessions.move_to_end(session)
            while len(_sessions) > MAX_SESSIONS:
                _sessions.popitem(last=False)
    return lang


@contextmanager
def use_language(lang: str):
    """Translate into `lang` inside the block, whatever the session says (tests, and relabelling)."""
    token = _forced.set(normalise(lang))
    try:
        yield
    finally:
        _forced.reset(token)


# --- text --------------------------------------------------------------------------------------------------

def t(key: str, lang: str | None = None, **values: Any) -> str:
    """The text of `key` in `lang` (default: the current language), `{placeholders}` filled from `values`.
    A key missing in a language falls back to English; an unknown key is shown as itself (never an error)."""
    catalog = CATALOGS.get(normalise(lang) if lang else current_language(), CATALOGS[DEFAULT])
    text = catalog.get(key) or CATALOGS[DEFAULT].get(key, key)
    return text.format(**values) if values else text


def text_of(spec, lang: str | None = None) -> str:
    """A widget's text spec: a key, or (key, {values})."""
    if isinstance(spec, tuple):
        key, values = spec
        return t(key, lang, **values)
    return t(spec, lang)


def field_key(name: str, kind: str = "pretrain") -> str:
    """The help-text key of a config field: `field.<name>`, or `field.finetune.<name>` where the fine-tuning
    field's docstring differs from the pretraining one (batch_size, learning_rate, ...)."""
    specific = f"field.{kind}.{name}"
    return specific if specific in CATALOGS[DEFAULT] else f"field.{name}"


def translate_columns(frame, lang: str | None = None):
    """A display table with its column names translated (keys `col.<name>`); the data is untouched."""
    if (lang or current_language()) == DEFAULT:
        return frame
    return frame.rename(columns={c: t(f"col.{c}", lang) for c in frame.columns if f"col.{c}" in CATALOGS["en"]})


def status_word(status: str, lang: str | None = None) -> str:
    """A run status ('running', 'completed', ...) in the current language (the data keeps the English word)."""
    key = f"status.{status}"
    return t(key, lang) if key in CATALOGS["en"] else status


# --- engine errors -----------------------------------------------------------------------------------------

def translate_error(error, lang: str | None = None) -> str:
    """An engine error in the current language. An error made from a key (errors.UserError) is shown from that
    key's template with its own parameters (field names and values stay as they are); anything else, a plain
    message or a stored string such as a run's error, stays English."""
    lang = normalise(lang) if lang else current_language()
    key, params = getattr(error, "key", ""), dict(getattr(error, "params", {}))
    if lang == DEFAULT or not key or key not in CATALOGS[lang]:
        return str(error)
    if "why" in params:
        params["why"] = t("error.why", lang, why=params["why"]) if params["why"] else ""
    return t(key, lang, **params)


# --- components and relabelling ----------------------------------------------------------------------------

TEXT_PROPS = ("label", "info", "placeholder")


def widget(cls, *, choices: Callable[[], list] | list | None = None, **kwargs):
    """`cls(**kwargs)` built in English, with `label`, `info`, `placeholder` and `text` (a Markdown's or a
    Button's value) given as keys (or (key, {values})), and `choices` as a function of no arguments (called
    again in the language switched to) or a plain list (not translated). The component is registered so that
    a language switch updates those properties. Give `text` only for a text that handlers never replace
    (intros, button texts), or the switch would overwrite their output."""
    specs = {prop: kwargs.pop(prop) for prop in TEXT_PROPS if prop in kwargs and kwargs[prop] is not None}
    if "text" in kwargs:  # `text`: the key of a Markdown's or a Button's value (`value` itself stays data)
        specs["value"] = kwargs.pop("text")
    if choices is not None and not callable(choices):
        kwargs["choices"], choices = choices, None
    with use_language(DEFAULT):
        built = {prop: text_of(spec) for prop, spec in specs.items()}
        if choices is not None:
            built["choices"] = choices()
    component = cls(**built, **kwargs)
    register(component, specs, choices)
    return component


def register(component, specs: dict, choices: Callable[[], list] | None = None) -> None:
    """Relabel `component` on a language switch: `specs` maps a property to a key (or (key, {values}))."""
    from gradio.context import Context

    root = Context.root_block
    if root is None:  # built outside any Blocks: nothing will show it
        return
    entries = getattr(root, _ENTRIES, None)
    if entries is None:
        entries = []
        setattr(root, _ENTRIES, entries)
    entries.append((component, specs, choices))


def after_switch(fn: Callable, inputs, outputs, on_load: bool = True) -> None:
    """Run `fn(inputs) -> outputs` again after every language switch, and after the page load when the stored
    language is not English (`on_load=False`: not then, because the app runs it after the load anyway): for
    text a handler wrote (a summary, the effective batch line) that should follow the language."""
    from gradio.context import Context

    root = Context.root_block
    if root is not None:
        hooks = getattr(root, _HOOKS, None)
        if hooks is None:
            hooks = []
            setattr(root, _HOOKS, hooks)
        hooks.append((fn, inputs, outputs, on_load))


def registered(blocks: gr.Blocks) -> list:
    """The components registered while `blocks` was built, with their text specs."""
    return list(getattr(blocks, _ENTRIES, []))


def relabel(entries: list, lang: str) -> list:
    """One update per registered component: its texts (and choices) in `lang`."""
    updates = []
    with use_language(lang):
        for _, specs, choices in entries:
            changes = {prop: text_of(spec) for prop, spec in specs.items()}
            if choices is not None:
                changes["choices"] = choices()
            updates.append(gr.update(**changes))
    return updates


def language_switch() -> tuple[gr.Radio, gr.BrowserState]:
    """The header's language Radio and the BrowserState that keeps the choice in this browser."""
    radio = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value=DEFAULT, show_label=False,
                     container=False, label="Language / 语言", elem_id="language-switch", scale=0, min_width=220)
    stored = gr.BrowserState(DEFAULT, storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
    return radio, stored


def wire_language(app: gr.Blocks, radio: gr.Radio, stored: gr.BrowserState) -> tuple[object, object]:
    """Page load: take the stored language, remember it for the session, relabel when it is not English.
    Switch: the same, and store the choice. Returns the page-load and the switch events, so that handlers that
    write text (summaries, status lines) can run again after them, in the language chosen."""
    entries = registered(app)
    components = [component for component, _, _ in entries]

    def on_load(saved):
        lang = remember_language(saved)
        if lang == DEFAULT:  # built in English: nothing to send
            return [gr.skip()] * (1 + len(components))
        return [lang, *relabel(entries, lang)]

    def on_switch(choice):
        lang = remember_language(choice)
        return [lang, *relabel(entries, lang)]

    loaded = app.load(on_load, stored, [radio, *components], api_visibility="private", show_progress="hidden")
    switched = radio.input(on_switch, radio, [stored, *components], api_visibility="private",
                           show_progress="hidden")
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    hooks = getattr(app, _HOOKS, [])
    for fn, inputs, outputs, _ in hooks:
        switched.then(fn, inputs, outputs, **quiet)
    at_load = [hook[:3] for hook in hooks if hook[3]]
    if at_load:  # one event for all of them: on an English page load (the usual one) it only says "skip"
        fn, inputs, outputs = _combined(at_load)
        loaded.then(fn, inputs, outputs, **quiet)
    return loaded, switched


def _as_list(components) -> list:
    return list(components) if isinstance(components, (list, tuple)) else [components]


def _combined(hooks: list) -> tuple[Callable, list, list]:
    """Several (fn, inputs, outputs) as one handler over all their inputs and outputs, which skips every
    output when the session's language is English (the page was built in English)."""
    inputs = [c for _, ins, _ in hooks for c in _as_list(ins)]
    outputs = [c for _, _, outs in hooks for c in _as_list(outs)]

    def run(*args):
        if current_language() == DEFAULT:
            return [gr.skip()] * len(outputs)
        results, offset = [], 0
        for fn, ins, outs in hooks:
            count = len(_as_list(ins))
            result = fn(*args[offset:offset + count])
            offset += count
            results.extend(result if isinstance(outs, (list, tuple)) else [result])
        return results
    return run, inputs, outputs

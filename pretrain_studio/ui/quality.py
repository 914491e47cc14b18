"""What a run's numbers mean, in words: the fine-tuning verdict, a pretraining run's no-context line and its
downstream checks.

The engine records them in the run's info (training/verdict.py: `verdict`; training/pretrain.py:
`no_context_loss`; training/downstream.py: `downstream`, `downstream_seconds` and the `downstream_accuracy/<id>`
and `downstream_probe/<id>` metrics); this module only writes them for the live monitor, the run page and the runs
table, in the browser tab's language.

The verdict's advice is English text from the engine (clauses joined by "; "). For Chinese each clause is
translated by a pattern (`ADVICE_PATTERNS`, as i18n.translate_error does for errors), keeping its numbers; a
clause no pattern knows stays English, so a change of wording in the engine shows English, never a wrong text.
"""

from __future__ import annotations

import re

from ..run_states import RunStatus
from .i18n import DEFAULT, current_language, t

# training/downstream.py's metric names (not imported from there: that module imports torch).
ACCURACY_PREFIX = "downstream_accuracy/"
PROBE_PREFIX = "downstream_probe/"


# --- fine-tuning: the verdict ------------------------------------------------------------------------------------

ADVICE_PATTERNS: list[tuple[re.Pattern, str]] = [(re.compile(p), k) for p, k in [
    (r"^the model scores no better than always answering the most frequent class \((?P<majority>[^)]*)\): "
     r"it has not learned the task yet$", "advice.majority"),
    (r"^a logistic regression on the frozen base model's features scores (?P<probe>\S+), at least as well as "
     r"this fine-tune \((?P<score>[^)]*)\)$", "advice.probe"),
    (r"^train longer \(this run took (?P<steps>\d+) steps\), or raise the learning rate \(it was (?P<rate>[^)]*)\)$",
     "advice.longer"),
    (r"^a model this small learns more with full fine-tuning than with an adapter$", "advice.full"),
    (r"^classify from the mean of the token states \(pooling=mean\)$", "advice.pooling"),
    (r"^start the head from the linear probe \(head_init=linear_probe\)$", "advice.head_init"),
]]


def translate_advice(advice: str, lang: str | None = None) -> str:
    """The verdict's advice in the current language: clause by clause, English where no pattern matches."""
    lang = lang or current_language()
    if lang == DEFAULT or not advice:
        return advice
    clauses = [clause.strip() for clause in advice.rstrip(".").split("; ") if clause.strip()]
    out = []
    for clause in clauses:
        for pattern, key in ADVICE_PATTERNS:
            match = pattern.match(clause)
            if match:
                out.append(t(key, lang, **match.groupdict()))
                break
        else:
            out.append(clause)
    return "；".join(out) + "。"


def verdict_line(info: dict) -> str:
    """'✓ Above the majority class and the linear probe.', or a warning with what usually helps; '' without one."""
    verdict = (info or {}).get("verdict")
    if not verdict:
        return ""
    entities = "above_memorise" in verdict  # a token classifier: its first baseline memorises training entities
    if verdict.get("above_majority") and verdict.get("above_linear_probe"):
        return t("verdict.ok_entities" if entities else "verdict.ok")
    first = "verdict.below_memorise" if entities else "verdict.below_majority"
    key = first if not verdict.get("above_majority") else "verdict.below_probe"
    return t(key, advice=translate_advice(verdict.get("advice", "")))


def verdict_marker(row: dict) -> str:
    """The runs table's verdict cell: a fine-tuning run against its baselines, a finished pretraining run against
    its step-0 downstream checks; '' when the run has no verdict (yet)."""
    info = row.get("info") or {}
    verdict = row.get("verdict") or info.get("verdict")
    if verdict:
        if not verdict.get("above_majority"):
            return t("verdict.marker_majority")
        if not verdict.get("above_linear_probe"):
            return t("verdict.marker_probe")
        return t("verdict.marker_ok")
    downstream = row.get("downstream") or info.get("downstream")
    checked = [summary for summary in (downstream or {}).values() if summary]
    if checked and not RunStatus(row.get("status") or "completed").active:
        paid_off = all(summary.get("paid_off") for summary in checked)
        return t("verdict.marker_paid_off" if paid_off else "verdict.marker_not_paid_off")
    return ""


# --- pretraining: the no-context line ------------------------------------------------------------------------------

def no_context_suffix(eval_loss: float | None, info: dict) -> str:
    """' (1.23 nats below the no-context line)' after the eval loss; '' when the run has no line."""
    line = (info or {}).get("no_context_loss")
    if line is None or eval_loss is None:
        return ""
    gap = line - eval_loss
    return t("quality.no_context_below" if gap > 0 else "quality.no_context_above", gap=f"{abs(gap):.2f}")


def no_context_sentence(eval_loss: float | None, info: dict) -> str:
    """The run page's sentence: the held-out loss against the no-context line."""
    line = (info or {}).get("no_context_loss")
    if line is None:
        return ""
    if eval_loss is None:
        return t("quality.page_line_only", line=f"{line:.3f}")
    gap = line - eval_loss
    return t("quality.page_below" if gap > 0 else "quality.page_above", loss=f"{eval_loss:.3f}",
             gap=f"{abs(gap):.2f}", line=f"{line:.3f}")


# --- pretraining: the downstream checks ------------------------------------------------------------------------------

def continued(config: dict) -> bool:
    """Whether the run continued from a base model (its step-0 check is that model, not random weights)."""
    return bool((config or {}).get("base_model"))


def downstream_lines(status: dict, names: dict[str, str] | None = None) -> list[str]:
    """One sentence per downstream dataset ('+2.4 points over random weights at step 3,000' or 'not yet better
    than random weights (start 0.625, now 0.583)'), then what the checks cost, then (a run that ended without
    paying off) what usually helps. [] for a run without downstream checks."""
    info = status.get("info") or {}
    downstream = info.get("downstream") or {}
    if not downstream:
        return []
    names = names or {}
    base = continued(status.get("config"))
    reference = t("downstream.base" if base else "downstream.random")
    ended = not RunStatus(status.get("status") or "completed").active
    lines, unpaid = [], False
    for dataset_id, summary in downstream.items():
        if not summary:
            continue
        dataset = names.get(dataset_id, dataset_id)
        start, final = summary["start"], summary["final"]
        values = {"dataset": dataset, "reference": reference, "start": f"{start:.3f}", "final": f"{final:.3f}"}
        if summary.get("paid_off"):
            lines.append(t("downstream.paid_off", points=f"{(final - start) * 100:.1f}",
                           step=f"{summary['final_step']:,}", **values))
        elif not summary.get("final_step") and not ended:
            lines.append(t("downstream.only_start", **{k: v for k, v in values.items() if k != "final"}))
        else:
            unpaid = True
            lines.append(t("downstream.not_better" if ended else "downstream.not_yet", **values))
    seconds = info.get("downstream_seconds")
    if seconds:
        run_seconds = info.get("train_seconds") or status.get("elapsed_seconds") or 0
        lines.append(t("downstream.cost", seconds=f"{seconds:,.0f}", share=f"{seconds / run_seconds:.0%}")
                     if run_seconds else t("downstream.cost_plain", seconds=f"{seconds:,.0f}"))
    if ended and unpaid:
        lines.append(t("downstream.help_base" if base else "downstream.help_scratch"))
    return lines


def has_downstream(series: dict) -> bool:
    """Whether a run's metric series hold downstream checks (the figure is shown only then)."""
    return any(name.startswith(ACCURACY_PREFIX) and points for name, points in series.items())


def start_line_label(config: dict) -> str:
    """The downstream figure's step-0 line: random weights, or the base model the run continued from."""
    return t("plot.base_model_line" if continued(config) else "plot.no_pretraining")

"""Scoring named entities: entity-level precision, recall and F1, partial matches, errors, and the memorise baseline.

* `entity_report(gold, predicted)`: seqeval in strict IOB2 mode (an entity counts only with the right type and
  both boundaries), per type and micro / macro overall, the token accuracy, and nervaluate's SemEval-2013
  partial-match scores (`exact`: boundaries right whatever the type, `ent_type`: type right with some overlap,
  `partial`: half credit for overlap), which tell boundary errors from type errors. The keys `f1` and `accuracy`
  repeat the entity F1 and the token accuracy, so views made for text classification read a token run too.
* `memorise_baseline`: the CoNLL-2003 shared task's baseline: every token sequence seen as an entity in training
  is tagged, wherever it occurs, with its most frequent type (longest match first).
* `error_table`: the most frequent kinds of error (type confused, boundary too wide or too narrow, missed,
  spurious) with example sentences.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ..data.tag_schemes import entity_spans, repair_iob2

MEMORISE_MAX_TOKENS = 10  # the longest entity the memorise baseline looks for
_EXAMPLES = 2  # example sentences per row of the error table


def entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """The scores of predicted IOB2 tag sequences against gold ones (lists of sentences)."""
    from nervaluate.evaluator import Evaluator
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    predicted = [repair_iob2(p) for p in predicted]
    types = sorted({kind for sentence in gold for _, _, kind in entity_spans(sentence)})
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_type = {t: {"precision": float(report[t]["precision"]), "recall": float(report[t]["recall"]),
                    "f1": float(report[t]["f1-score"]), "support": int(report[t]["support"])}
                for t in types if t in report}
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    macro = report.get("macro avg", {"f1-score": 0.0})
    tokens = sum(len(s) for s in gold)
    correct = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    partial = {}
    if types:
        results = Evaluator(gold, predicted, tags=types, loader="list").evaluate()["overall"]
        partial = {mode: {"precision": float(r.precision), "recall": float(r.recall), "f1": float(r.f1),
                          "correct": int(r.correct), "incorrect": int(r.incorrect), "partial": int(r.partial),
                          "missed": int(r.missed), "spurious": int(r.spurious)}
                   for mode, r in results.items()}
    f1 = float(micro["f1-score"])
    accuracy = correct / tokens if tokens else 0.0
    return {"entity_f1": f1, "entity_precision": float(micro["precision"]), "entity_recall": float(micro["recall"]),
            "entity_macro_f1": float(macro["f1-score"]), "per_type": per_type, "token_accuracy": accuracy,
            "partial_match": partial, "f1": f1, "accuracy": accuracy, "sentences": len(gold), "tokens": tokens}


def memorise_baseline(train_tokens: list[list[str]], train_tags: list[list[str]], tokens: list[list[str]]
                      ) -> list[list[str]]:
    """The predicted tags of the memorise baseline for `tokens` (see the module docstring)."""
    seen: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for words, tags in zip(train_tokens, train_tags):
        for start, end, kind in entity_spans(tags):
            if end - start <= MEMORISE_MAX_TOKENS:
                seen[tuple(words[start:end])][kind] += 1
    known = {span: counts.most_common(1)[0][0] for span, counts in seen.items()}
    longest = max((len(s) for s in known), default=0)
    out = []
    for words in tokens:
        tags = ["O"] * len(words)
        i = 0
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):
                kind = known.get(tuple(words[i:i + n]))
                if kind is not None:
                    tags[i:i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        out.append(tags)
    return out


def classify_error(gold: tuple[int, int, str] | None, predicted: tuple[int, int, str] | None) -> str:
    """What went wrong between an overlapping gold and predicted entity (either may be None)."""
    if predicted is None:
        return "missed"
    if gold is None:
        return "spurious"
    (gs, ge, gt), (ps, pe, pt) = gold, predicted
    if (gs, ge) == (ps, pe):
        return "type confused" if gt != pt else "correct"
    kind = ("boundary too wide" if ps <= gs and pe >= ge else "boundary too narrow" if ps >= gs and pe <= ge
            else "boundary shifted")
    return kind if gt == pt else f"{kind}, type confused"


def error_table(tokens: list[list[str]], gold: list[list[str]], predicted: list[list[str]], limit: int = 15
                ) -> list[dict]:
    """Rows {"error", "gold", "predicted", "count", "examples"}, most frequent first."""
    counts: Counter = Counter()
    examples: dict[tuple, list[str]] = defaultdict(list)
    for words, gs, ps in zip(tokens, gold, predicted):
        gold_spans, pred_spans = entity_spans(gs), entity_spans(repair_iob2(ps))
        matched = set()
        for g in gold_spans:
            overlapping = [p for p in pred_spans if p[0] < g[1] and g[0] < p[1]]
            p = next((p for p in overlapping if p[:2] == g[:2]), overlapping[0] if overlapping else None)
            if p is not None:
                matched.add(p)
            kind = classify_error(g, p)
            if kind != "correct":
                _count(counts, examples, (kind, g[2], p[2] if p else "-"), words, g if p is None else p)
        for p in pred_spans:
            if p not in matched and not any(p[0] < g[1] and g[0] < p[1] for g in gold_spans):
                _count(counts, examples, ("spurious", "-", p[2]), words, p)
    return [{"error": key[0], "gold": key[1], "predicted": key[2], "count": n, "examples": examples[key]}
            for key, n in counts.most_common(limit)]


def _count(counts: Counter, examples: dict, key: tuple, words: list[str], span: tuple[int, int, str]) -> None:
    counts[key] += 1
    if len(examples[key]) < _EXAMPLES:
        start, end, _ = span
        # Chinese read one character per token is shown as text, not as characters between spaces.
        sep = "" if all(len(w) == 1 for w in words) and any(ord(w) >= 0x2E80 for w in words) else " "
        examples[key].append(sep.join(words[:start] + ["[[" + sep.join(words[start:end]) + "]]"] + words[end:]))

"""Entity tag schemes: detect which one a token dataset uses, find impossible sequences, convert to IOB2.

A tag is `O` or `<prefix>-<TYPE>`. The schemes people's files come in:

    IOB2 (BIO)   B- begins every entity, I- continues it               CoNLL-2003 as most copies have it
    IOB1         I- begins an entity; B- only where one entity of a type directly follows another of the same type
                 (the original CoNLL-2003 release)
    BIOES        B- begin, I- inside, E- end, S- a single-token entity (BILOU writes L- and U- for E- and S-)
    BMES         as BIOES with M- for the inside (Chinese character files, e.g. Resume NER)
    IO           I- (or a bare type, "PER") on every token of an entity: adjacent entities of one type merge

Every scheme is converted to IOB2, the scheme the studio trains and scores in (seqeval's strict mode). The
scheme is detected from the tags of all the files together; tags of two schemes in one dataset (I- beside M-,
or E- in a file whose others are IOB2) are refused. A sequence the scheme cannot produce (IOB2: I-X after O or
after another type; BIOES/BMES: an inside or end tag with no begin, a begin that never ends) is counted and
located (`TagProblems`), and read as the start of a new entity, the way seqeval's lenient mode reads it: the
dataset's summary says how many there were and where, so nothing is fixed silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SCHEMES = ("IOB2", "IOB1", "BIOES", "BMES", "IO")
# Prefix families: the prefixes each scheme writes (BILOU is read as BIOES).
_FAMILIES = {"IOB2": {"B", "I"}, "BIOES": {"B", "I", "E", "S"}, "BMES": {"B", "M", "E", "S"},
             "BILOU": {"B", "I", "L", "U"}}
_PREFIXES = {"B", "I", "E", "S", "M", "L", "U"}
_SHOWN = 5  # places named in a message before "and N more"


class TagSchemeError(ValueError):
    """Tags that fit no scheme, or two schemes in one dataset; the message names the file and line."""


def split_tag(tag: str) -> tuple[str, str | None]:
    """("B", "PER") for "B-PER", ("O", None) for "O", ("", "PER") for a bare type (IO without prefixes)."""
    if tag == "O":
        return "O", None
    prefix, dash, kind = tag.partition("-")
    if dash and prefix.upper() in _PREFIXES and kind:
        return prefix.upper(), kind
    return "", tag


def check_tag_syntax(tag: str) -> bool:
    """True for O, <prefix>-<TYPE> with a known prefix, or a bare type without spaces or dashes."""
    prefix, kind = split_tag(tag)
    return prefix != "" or (kind is not None and "-" not in kind and not any(c.isspace() for c in kind))


@dataclass
class TagProblems:
    """Impossible sequences found while converting: where (file, line) and how many."""

    count: int = 0
    places: list[str] = field(default_factory=list)

    def add(self, place: str) -> None:
        self.count += 1
        if len(self.places) < 20:
            self.places.append(place)

    def sentence(self) -> str:
        if not self.count:
            return ""
        more = f" and {self.count - _SHOWN} more" if self.count > _SHOWN else ""
        return (f"{self.count} impossible tag sequence(s) (an inside or end tag with no begin, or a begin that "
                f"never ends), read as the start of a new entity: {', '.join(self.places[:_SHOWN])}{more}")


def detect_scheme(prefix_sets: dict[str, dict[str, str]], sequences: Iterable[list[str]]) -> str:
    """The scheme of a dataset from the prefixes each file uses ({file: {prefix: where it is first used}}) and
    its tag sequences. Raises TagSchemeError for prefixes of two schemes."""
    used = set().union(*(set(p) for p in prefix_sets.values())) if prefix_sets else set()
    used.discard("O")
    if not used:
        return "IOB2"  # no entity at all: checked (and refused) by the reader, any scheme reads it
    if "" in used:
        if used != {""}:
            raise TagSchemeError(_mixed_message(prefix_sets, used - {"O"}, "bare types (no B-/I- prefix) beside "
                                                                           "prefixed tags"))
        return "IO"
    if "M" in used and "I" in used:
        raise TagSchemeError(_mixed_message(prefix_sets, {"M", "I"}, "M- (BMES) beside I- (BIO/BIOES) tags"))
    family = next((name for name, prefixes in _FAMILIES.items() if used <= prefixes), None)
    if family is None:
        raise TagSchemeError(_mixed_message(prefix_sets, used - {"B"},
                                            f"tags of more than one scheme ({', '.join(sorted(used))}-)"))
    if family != "IOB2":
        # Every entity of a BIOES/BMES file ends with E- or is S-: a file with entities but no end tags is IOB2.
        ends = {"E", "S", "L", "U"}
        plain = [name for name, first in prefix_sets.items() if set(first) & {"B", "I", "M"} and not set(first) & ends]
        if plain:
            marked = next(name for name, first in prefix_sets.items() if set(first) & ends)
            where = ", ".join(f"first {p}- at {at}" for p, at in sorted(prefix_sets[marked].items()) if p in ends)
            raise TagSchemeError(f"mixed tag schemes: {marked} marks where entities end (BIOES/BMES: {where}), "
                                 f"{', '.join(plain)} does not (IOB2). Use one scheme throughout")
    if family == "BILOU":
        return "BIOES"
    if family in ("BIOES", "BMES") and used & {"E", "S", "M", "L", "U"}:
        return family
    if used == {"I"}:
        return "IO"
    # B- and I- only: IOB2, unless entities start with I- and B- only separates neighbours of one type (IOB1).
    starts_with_i = b_after_other = 0
    for tags in sequences:
        previous = None
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix == "I" and previous != kind:
                starts_with_i += 1
            elif prefix == "B" and previous != kind:
                b_after_other += 1
            previous = kind
    return "IOB1" if starts_with_i and not b_after_other else "IOB2"


def _mixed_message(prefix_sets: dict[str, dict[str, str]], odd: set[str], what: str) -> str:
    """Where each conflicting prefix is first used, e.g. "first M- at train.bmes line 2, first I- at ..."."""
    places = []
    for prefix in sorted(odd):
        seen = [where for first in prefix_sets.values() for p, where in first.items() if p == prefix]
        if seen:
            places.append(f"first {prefix + '-' if prefix else 'bare type'} at {seen[0]}")
    return f"mixed tag schemes: {what}; {', '.join(places) or 'in the files'}. Use one scheme throughout"


def to_iob2(tags: list[str], scheme: str, problems: TagProblems | None = None,
            places: list[str] | None = None) -> list[str]:
    """The sentence's tags in IOB2. `places` (one per tag, e.g. "train.txt line 12") locate impossible
    sequences in `problems`."""
    out: list[str] = []
    previous_kind = None  # the entity type the previous token belongs to (None: outside)
    open_end = False  # BIOES/BMES: the previous token began or continued an entity that must still end
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        where = places[i] if places else f"token {i + 1}"
        if scheme == "IO":
            out.append("O" if kind is None else ("I" if kind == previous_kind else "B") + f"-{kind}")
        elif scheme == "IOB1":
            out.append("O" if kind is None else f"B-{kind}" if prefix == "B" or kind != previous_kind
                       else f"I-{kind}")
        elif scheme == "IOB2":
            if prefix == "I" and kind != previous_kind:
                if problems is not None:
                    problems.add(where)
                prefix = "B"
            out.append("O" if kind is None else f"{prefix}-{kind}")
        else:  # BIOES / BMES (BILOU's L and U read as E and S)
            prefix = {"L": "E", "U": "S", "M": "I"}.get(prefix, prefix)
            continuing = prefix in ("I", "E") and open_end and kind == previous_kind
            if open_end and not continuing and problems is not None:
                problems.add(places[i - 1] if places else f"token {i}")  # the entity before never ended
            if prefix in ("I", "E") and not continuing:
                if problems is not None:
                    problems.add(where)
            if kind is None:
                out.append("O")
            else:
                out.append(f"I-{kind}" if continuing else f"B-{kind}")
            open_end = prefix in ("B", "I") and kind is not None
        previous_kind = kind
    if scheme in ("BIOES", "BMES") and open_end and problems is not None:
        problems.add(places[-1] if places else f"token {len(tags)}")
    return out


def entity_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end exclusive, type) of each entity in an IOB2 sequence; an I-X with no entity of type X open
    starts one (the lenient reading, used for model predictions)."""
    spans: list[tuple[int, int, str]] = []
    start, kind = None, None
    for i, tag in enumerate(tags + ["O"]):
        prefix, this = split_tag(tag)
        if start is not None and (prefix != "I" or this != kind):
            spans.append((start, i, kind))
            start, kind = None, None
        if prefix in ("B", "I", "") and this is not None and start is None:
            start, kind = i, this
    return spans


def repair_iob2(tags: list[str]) -> list[str]:
    """Predicted tags as a valid IOB2 sequence: an I-X that starts an entity becomes B-X (strict scoring would
    otherwise drop the entity the model clearly meant)."""
    out = []
    previous = None
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and kind != previous:
            tag = f"B-{kind}"
        out.append(tag)
        previous = kind
    return out


def iob2_labels(types: Iterable[str]) -> list[str]:
    """The label list of a model: O, then B- and I- of each type in sorted order."""
    return ["O"] + [f"{p}-{t}" for t in sorted(set(types)) for p in ("B", "I")]

"""README.zh.md stays in step with README.md.

The Chinese README is a translation, so its prose differs by design; what must not differ is the
skeleton a reader relies on: the headings (levels and order), every fenced code block byte for byte,
the tables (how many, their rows and columns), the image references, and the inline code spans of
each section (setting names, commands, metric names). A section, code block, table row or setting
added to one README only makes `test_the_two_readmes_are_in_step` fail with a message naming the
section; the mutation tests below prove each of those checks really fires.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_EN = REPO / "README.md"
README_ZH = REPO / "README.zh.md"

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)")
# An unescaped pipe separates table cells; `\|` inside a cell is part of the cell.
CELL_SPLIT = re.compile(r"(?<!\\)\|")
# Inline code: a run of backticks, the shortest text, the same run (CommonMark's rule, simplified).
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


@dataclass
class Section:
    """One heading and what follows it up to the next heading."""
    level: int
    title: str
    prose: list[str] = field(default_factory=list)  # its lines outside code blocks, tables included

    @property
    def code_spans(self) -> Counter:
        """Inline code, found per paragraph because a span may wrap onto the next line (and the
        translation may wrap it elsewhere); inner whitespace is normalised as Markdown renders it."""
        spans: Counter = Counter()
        for paragraph in re.split(r"\n\s*\n", "\n".join(self.prose)):
            spans.update(" ".join(span.split()) for _, span in CODE_SPAN.findall(paragraph))
        return spans


@dataclass
class Table:
    section: int  # index into sections
    rows: int  # header and body rows, without the |---| separator
    columns: list[int] = field(default_factory=list)  # cells of each row


@dataclass
class Block:
    section: int
    text: str  # the fence lines included, so a changed language tag counts too


@dataclass
class Readme:
    sections: list[Section]
    blocks: list[Block]
    tables: list[Table]
    images: list[str]


def parse(text: str) -> Readme:
    """Split a README into the parts the two languages must share. Text before the first heading
    is section 0 with level 0, so a language-switch line at the very top belongs to no section."""
    sections = [Section(0, "(top of the file)")]
    blocks: list[Block] = []
    tables: list[Table] = []
    images: list[str] = []
    fence: list[str] | None = None
    table: Table | None = None
    for line in text.splitlines():
        if fence is not None:
            fence.append(line)
            if FENCE.match(line) and line.strip() == line.strip()[0] * len(line.strip()):
                blocks.append(Block(len(sections) - 1, "\n".join(fence)))
                fence = None
            continue
        if FENCE.match(line):
            fence = [line]
            table = None
            sections[-1].prose.append("")
            continue
        stripped = line.strip()
        if stripped.startswith("|"):
            if table is None:
                table = Table(len(sections) - 1, 0)
                tables.append(table)
            if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*", stripped):
                table.rows += 1
                table.columns.append(len(CELL_SPLIT.split(stripped.strip("|"))))
        else:
            table = None
        heading = HEADING.match(line)
        if heading:
            sections.append(Section(len(heading.group(1)), heading.group(2)))
            continue
        images.extend(IMAGE.findall(line))
        sections[-1].prose.append(line)
    assert fence is None, "a fenced code block is never closed"
    return Readme(sections, blocks, tables, images)


def _name(readme: Readme, index: int) -> str:
    section = readme.sections[index]
    return f"{'#' * section.level} {section.title}".strip()


def _where(en: Readme, zh: Readme, index: int) -> str:
    """A section named in both languages, e.g. `section '## CLI' (README.zh.md: '## 命令行（CLI）')`."""
    return f"section '{_name(en, index)}' (README.zh.md: '{_name(zh, index)}')"


def _signature(readme: Readme, index: int) -> tuple:
    """What a section shares with its translation: its level, inline code, code blocks and table shapes."""
    section = readme.sections[index]
    return (section.level, tuple(sorted(section.code_spans.elements())),
            tuple(b.text for b in readme.blocks if b.section == index),
            tuple(tuple(t.columns) for t in readme.tables if t.section == index))


def _heading_problems(en: Readme, zh: Readme) -> list[str]:
    """Sections added to, removed from or moved in one README only. The headings themselves are
    translated, so the sections are matched by what they share (level, code, tables)."""
    def listing(readme: Readme, start: int, stop: int) -> str:
        return ", ".join(f"'{_name(readme, i)}'" for i in range(start, stop))

    problems = []
    matcher = difflib.SequenceMatcher(None, [_signature(en, i) for i in range(len(en.sections))],
                                      [_signature(zh, i) for i in range(len(zh.sections))], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        after = f"after '{_name(en, i1 - 1)}'" if i1 else "at the top"
        if tag == "delete":
            problems.append(f"README.md has {listing(en, i1, i2)} ({after}), which README.zh.md lacks")
        elif tag == "insert":
            problems.append(f"README.zh.md has {listing(zh, j1, j2)} ({after} in README.md's terms), "
                            f"which README.md lacks")
        elif tag == "replace" and [s.level for s in en.sections[i1:i2]] != [s.level for s in zh.sections[j1:j2]]:
            problems.append(f"{after}, README.md has {listing(en, i1, i2)} where README.zh.md has "
                            f"{listing(zh, j1, j2)}")
    return problems or ["the heading levels differ: README.md "
                        f"{[_name(en, i) for i in range(1, len(en.sections))]}"]


def compare(en_text: str, zh_text: str) -> list[str]:
    """Every way README.zh.md has drifted from README.md, as messages naming the section."""
    en, zh = parse(en_text), parse(zh_text)
    if [s.level for s in en.sections] != [s.level for s in zh.sections]:
        # Everything else is compared section by section, which means nothing until the sections match.
        return [f"headings differ ({len(en.sections) - 1} in README.md, {len(zh.sections) - 1} in README.zh.md): "
                + problem for problem in _heading_problems(en, zh)]

    problems: list[str] = []
    for i, (a, b) in enumerate(zip(en.sections, zh.sections)):
        where = _where(en, zh, i)
        if a.code_spans != b.code_spans:
            missing = sorted((a.code_spans - b.code_spans).elements())
            extra = sorted((b.code_spans - a.code_spans).elements())
            problems.append(f"inline code differs in {where}: only in README.md: {missing}; "
                            f"only in README.zh.md: {extra}")

        en_blocks = [x.text for x in en.blocks if x.section == i]
        zh_blocks = [x.text for x in zh.blocks if x.section == i]
        if len(en_blocks) != len(zh_blocks):
            only_en = [x.splitlines()[1:2] for x in en_blocks if x not in zh_blocks]
            only_zh = [x.splitlines()[1:2] for x in zh_blocks if x not in en_blocks]
            problems.append(f"{where} has {len(en_blocks)} fenced code blocks in README.md, {len(zh_blocks)} in "
                            f"README.zh.md; first lines of the blocks only in README.md: {only_en}, "
                            f"only in README.zh.md: {only_zh}")
        else:
            for n, (x, y) in enumerate(zip(en_blocks, zh_blocks), start=1):
                if x != y:
                    diff = "\n".join(difflib.unified_diff(x.splitlines(), y.splitlines(), "README.md",
                                                          "README.zh.md", lineterm="", n=1))
                    problems.append(f"code block {n} of {where} differs (code blocks must be identical):\n{diff}")

        en_tables = [t for t in en.tables if t.section == i]
        zh_tables = [t for t in zh.tables if t.section == i]
        if len(en_tables) != len(zh_tables):
            problems.append(f"{where} has {len(en_tables)} tables in README.md, {len(zh_tables)} in README.zh.md")
            continue
        for n, (x, y) in enumerate(zip(en_tables, zh_tables), start=1):
            if x.rows != y.rows:
                problems.append(f"table {n} of {where}: README.md has {x.rows} rows, README.zh.md {y.rows}")
            elif x.columns != y.columns:
                row = next(r for r, (p, q) in enumerate(zip(x.columns, y.columns)) if p != q)
                problems.append(f"table {n} of {where}, row {row + 1}: README.md has {x.columns[row]} cells, "
                                f"README.zh.md {y.columns[row]}")

    if en.images != zh.images:
        problems.append(f"image references differ: README.md {en.images}, README.zh.md {zh.images}")
    return problems


@pytest.fixture(scope="module")
def texts() -> tuple[str, str]:
    return README_EN.read_text(encoding="utf-8"), README_ZH.read_text(encoding="utf-8")


def test_the_two_readmes_are_in_step(texts):
    problems = compare(*texts)
    assert not problems, ("README.zh.md is out of step with README.md; translate the change into it:\n\n"
                          + "\n\n".join(problems))


def test_the_chinese_readme_links_to_the_english_one_and_the_images_exist(texts):
    en_text, zh_text = texts
    top = zh_text.split("\n# ", 1)[0]
    assert "(README.md)" in top, "README.zh.md should link to README.md above its title"
    for image in parse(en_text).images:
        assert (REPO / image).is_file(), f"README image {image} is missing"


def test_the_chinese_readme_is_chinese(texts):
    """A copy of README.md would pass the structural checks; the prose must really be translated."""
    _, zh_text = texts
    han = len(re.findall(r"[\u4e00-\u9fff]", zh_text))
    assert han > 5000, f"README.zh.md has only {han} Chinese characters"


# Each drift a maintainer could make to one README only, and the words its message must contain. The
# anchors are text both READMEs share (code lines, a table row's key cells, an image path), so each change
# can be made to either file.
def _after(anchor: str, addition: str):
    def mutate(text: str) -> str:
        assert anchor in text, anchor
        return text.replace(anchor, anchor + addition, 1)
    return mutate


def _add_table_row(text: str) -> str:
    start = text.index("| `torch_compile` | `false` |")
    end = text.index("\n", start) + 1
    return text[:end] + "| `new_setting` | `1` | A setting added to one README only. |\n" + text[end:]


QUICK_START_BLOCK = "scripts/test.sh\n```\n"
MUTATIONS = {
    "a section": (_after(QUICK_START_BLOCK, "\n## New section\n\nText.\n"), ("'## New section'", "Quick start")),
    "a subsection": (_after(QUICK_START_BLOCK, "\n### Extra\n\nText.\n"), ("'### Extra'", "Quick start")),
    "a code block": (_after("[--extra-trials N]   # resume it, or join from elsewhere\n```\n",
                            "\n```bash\npretrain-studio new-command\n```\n"),
                     "fenced code blocks in README.md"),
    "a changed code line": (lambda t: t.replace("scripts/test.sh\n```", "scripts/test.sh --fast\n```", 1),
                            "scripts/test.sh --fast"),
    "a table row": (_add_table_row, "table 1 of section '## Pretraining settings'"),
    "a table": (_after("studio_model.json\n```\n", "\n| a | b |\n|---|---|\n| 1 | 2 |\n"), "tables"),
    "an image": (_after("(docs/screenshot-finetune.png)\n", "\n![A new screenshot](assets/new.png)\n"),
                 "image references differ"),
    "a setting in the prose": (_after(QUICK_START_BLOCK, "\nSee `new_flag`.\n"),
                               "inline code differs in section '## Quick start'"),
}


@pytest.mark.parametrize("change", sorted(MUTATIONS))
@pytest.mark.parametrize("side", ["README.md", "README.zh.md"])
def test_a_change_to_one_readme_only_is_caught_and_named(texts, change, side):
    en_text, zh_text = texts
    mutate, expected = MUTATIONS[change]
    if side == "README.md":
        en_text = mutate(en_text)
    else:
        zh_text = mutate(zh_text)
    problems = compare(en_text, zh_text)
    assert problems, f"{change} added to {side} only went unnoticed"
    expected = (expected,) if isinstance(expected, str) else expected
    assert any(all(words in p for words in expected) for p in problems), problems

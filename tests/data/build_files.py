"""Rebuild the small real-text files in tests/data from the team's shared data folder (not needed to run the tests).

The files are committed; this script only documents, and repeats, how they were cut. Every source is in the
public domain (see tests/data/README.md). Bytes are copied untouched (encodings and line endings included),
except for the labelled CSVs, which are written as UTF-8 with a `text,label` header.

    python tests/data/build_files.py [SHARED_DATA_FOLDER]   # default: $PRETRAIN_STUDIO_DATA or ../shared/data
"""

from __future__ import annotations

import csv
import os
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lines_of(path: Path, start: int, stop: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(True)[start:stop])


def paragraphs(text: str, min_words: int, max_words: int) -> list[str]:
    """Blank-line separated paragraphs, re-flowed onto one line, of a bounded length."""
    out = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        words = block.split()
        if min_words <= len(words) <= max_words and not block.lstrip().startswith("["):
            out.append(" ".join(words))
    return out


def chunks(words: list[str], size: int) -> list[str]:
    return [" ".join(words[i:i + size]) for i in range(0, len(words) - size + 1, size)]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def split_rows(per_label: dict[str, list[str]], counts: tuple[int, int, int], seed: int) -> list[list[tuple]]:
    """train/dev/test rows, `counts` texts per label in each, taken in order from each book (no overlap)."""
    splits: list[list[tuple]] = [[], [], []]
    for label, texts in per_label.items():
        start = 0
        for split, count in zip(splits, counts):
            split.extend((text, label) for text in texts[start:start + count])
            start += count
        assert start <= len(texts), f"{label}: only {len(texts)} texts for {sum(counts)}"
    for split in splits:
        random.Random(seed).shuffle(split)
    return splits


def main(shared: Path) -> None:
    gutenberg = shared / "gutenberg_nltk"
    # English raw text: CRLF (as Moby Dick ships in NLTK's copy) and Latin-1 (é in The Ball and the Cross).
    (HERE / "moby_dick_crlf.txt").write_bytes(lines_of(gutenberg / "melville-moby_dick.txt", 0, 2800))
    (HERE / "chesterton_latin1.txt").write_bytes(lines_of(gutenberg / "chesterton-ball.txt", 4500, 5300))
    # Chinese raw text: the first chapters of Hongloumeng (UTF-8, one paragraph per line).
    (HERE / "hongloumeng_start.txt").write_bytes(lines_of(shared / "hongloumeng" / "hongloumeng.txt", 0, 120))

    # "Who wrote it?": three authors whose styles differ plainly (prose, a play in verse, free verse).
    english = {
        "Austen": paragraphs((gutenberg / "austen-sense.txt").read_text(encoding="latin-1"), 25, 80)[200:],
        "Shakespeare": chunks((gutenberg / "shakespeare-hamlet.txt").read_text(encoding="latin-1").split()[2000:], 40),
        "Whitman": chunks((gutenberg / "whitman-leaves.txt").read_text(encoding="latin-1").split()[3000:], 40),
    }
    train, dev, test = split_rows(english, (80, 20, 20), seed=0)
    write_csv(HERE / "authors_train.csv", train)
    write_csv(HERE / "authors_dev.csv", dev)
    write_csv(HERE / "authors_test.csv", test)

    # "Which novel?": three classics of the Ming and Qing, 60-character windows of their text.
    def windows(path: Path, skip: int) -> list[str]:
        text = re.sub(r"\s+", "", path.read_text(encoding="utf-8-sig"))[skip:]
        return [text[i:i + 60] for i in range(0, 60 * 80, 60)]

    chinese = {
        "红楼梦": windows(shared / "hongloumeng" / "hongloumeng.txt", 200_000),
        "西游记": windows(shared / "pretrain_zh" / "西游记.txt", 200_000),
        "三国演义": windows(shared / "pretrain_zh" / "三国演义.txt", 200_000),
    }
    train, dev, test = split_rows(chinese, (50, 15, 15), seed=0)
    write_csv(HERE / "novels_zh_train.csv", train)
    write_csv(HERE / "novels_zh_dev.csv", dev)
    write_csv(HERE / "novels_zh_test.csv", test)
    gutenberg_excerpts(shared)
    austen_entities(gutenberg)
    hongloumeng_entities(shared)


# Names in three Austen novels, tagged by these lists (a silver standard: every capitalised token of a list is
# tagged, titles such as Mr and Sir are not part of a name, consecutive names of one type are one entity). Each
# split is another novel, so most test names never occur in training: a model must learn names from context.
AUSTEN_NAMES = {
    "sense": {
        "PER": "Elinor Marianne Margaret Dashwood Edward Ferrars Robert Willoughby Brandon Jennings Middleton "
               "Palmer Charlotte Lucy Steele Fanny Harry Eliza Williams Morton Grey Pratt Anne Nancy Henry John",
        "LOC": "Norland Barton London Devonshire Sussex Delaford Cleveland Exeter Plymouth Longstaple Dorsetshire "
               "Somersetshire Oxford England Bath Kensington Allenham Dawlish Honiton Weymouth Westminster",
    },
    "emma": {
        "PER": "Emma Woodhouse Knightley George John Isabella Harriet Smith Weston Taylor Frank Churchill Jane "
               "Fairfax Elton Augusta Hawkins Bates Martin Robert Goddard Perry Cole Campbell Dixon Suckling Henry",
        "LOC": "Highbury Hartfield Randalls Donwell London Enscombe Richmond Bath Weymouth Ireland Surry Yorkshire "
               "Kingston Bristol England Abbey",
    },
    "persuasion": {
        "PER": "Anne Elliot Walter Elizabeth Mary Musgrove Charles Henrietta Louisa Wentworth Frederick Croft "
               "Russell Harville Benwick Clay Shepherd Smith Dalrymple Carteret Hayter Sophia William James",
        "LOC": "Kellynch Uppercross Lyme Bath Somersetshire Camden Winthrop Monkford Plymouth London Taunton "
               "Portsmouth Gibraltar Bristol England Crewkherne",
    },
}


def sentences_of(text: str) -> list[list[str]]:
    """Sentences (split at . ! ? before a capital) as word and punctuation tokens."""
    flat = re.sub(r"\s+", " ", text.replace("\r\n", "\n"))
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", flat):
        tokens = re.findall(r"\w+|[^\w\s]", sentence)
        if 4 <= len(tokens) <= 60:
            out.append(tokens)
    return out


def tag_names(tokens: list[str], names: dict[str, set[str]]) -> list[str]:
    tags, previous = [], None
    for token in tokens:
        kind = next((k for k, words in names.items() if token in words), None)
        tags.append("O" if kind is None else ("I-" if kind == previous else "B-") + kind)
        previous = kind
    return tags


def austen_entities(gutenberg: Path) -> None:
    """ner_austen_{train,dev,test}.conll: Sense and Sensibility (train, a -DOCSTART- per chapter), Emma (dev) and
    Persuasion (test); two columns, a space between, IOB2; 2 of 3 sentences with an entity, 1 of 3 without."""
    plan = (("sense", "austen-sense.txt", "train", 420), ("emma", "austen-emma.txt", "dev", 120),
            ("persuasion", "austen-persuasion.txt", "test", 120))
    for novel, file, split, count in plan:
        names = {kind: set(words.split()) for kind, words in AUSTEN_NAMES[novel].items()}
        text = (gutenberg / file).read_text(encoding="latin-1")
        chapters = re.split(r"\n\s*CHAPTER [IVXL0-9]+\s*\n|\n\s*Chapter [0-9]+\s*\n", text)[1:]
        lines = []
        with_entity = without = 0
        for chapter in chapters:
            chapter_lines = []
            for tokens in sentences_of(chapter):
                tags = tag_names(tokens, names)
                has = any(t != "O" for t in tags)
                if has and with_entity < 2 * count // 3:
                    with_entity += 1
                elif not has and without < count // 3:
                    without += 1
                else:
                    continue
                chapter_lines += [f"{tok} {tag}" for tok, tag in zip(tokens, tags)] + [""]
            if chapter_lines:
                lines += (["-DOCSTART- O", ""] if split == "train" else []) + chapter_lines
            if with_entity + without >= count:
                break
        (HERE / f"ner_austen_{split}.conll").write_text("\n".join(lines) + "\n", encoding="utf-8")


# People and places of the first chapter of Hongloumeng, tagged by this list, one character per line, BMES.
HONGLOUMENG_NAMES = {
    "PER": "甄士隐 贾雨村 英莲 封氏 娇杏 霍启 封肃 空空道人 茫茫大士 渺渺真人 女娲氏 甄费 士隐 雨村 贾化 时飞",
    "LOC": "姑苏 阊门 十里街 仁清巷 葫芦庙 大荒山 无稽崖 青埂峰 湖州 大如州 太虚幻境 灵河 三生石 长安 神京",
}


def hongloumeng_entities(shared: Path) -> None:
    """ner_hongloumeng.bmes: sentences (cut at 。！？) of the first chapter holding a name of the list, one
    character per line with a space and its BMES tag; the longest name wins where two overlap."""
    text = (shared / "hongloumeng" / "hongloumeng.txt").read_text(encoding="utf-8-sig")
    chapter = text.split("第二回")[0].split("第一回", 1)[1]
    names = sorted(((n, kind) for kind, words in HONGLOUMENG_NAMES.items() for n in words.split()),
                   key=lambda item: -len(item[0]))
    lines = []
    for sentence in re.findall(r"[^。！？\s]+[。！？]", re.sub(r"\s+", "", chapter)):
        tags = ["O"] * len(sentence)
        for name, kind in names:
            for match in re.finditer(re.escape(name), sentence):
                a, b = match.span()
                if all(t == "O" for t in tags[a:b]):
                    tags[a:b] = ([f"S-{kind}"] if b - a == 1 else
                                 [f"B-{kind}"] + [f"M-{kind}"] * (b - a - 2) + [f"E-{kind}"])
        if any(t != "O" for t in tags) and len(sentence) <= 120:
            lines += [f"{ch} {tag}" for ch, tag in zip(sentence, tags)] + [""]
    (HERE / "ner_hongloumeng.bmes").write_text("\n".join(lines) + "\n", encoding="utf-8")


def gutenberg_excerpts(shared: Path) -> None:
    """Project Gutenberg header, markers and licence as PG ships them (issue 16): pieces of two files, joined."""
    books = shared / "pretrain_en"
    # Today's layout: header, "*** START OF THIS PROJECT GUTENBERG EBOOK", the story's first and last lines,
    # "*** END OF THIS ...", and the licence up to its first section, with "*** START: FULL LICENSE ***". UTF-8, CRLF.
    amy = books / "Conrad, Joseph" / "Amy Foster.txt"
    (HERE / "gutenberg_amy_foster.txt").write_bytes(lines_of(amy, 0, 45) + lines_of(amy, 1124, 1180))
    # The 1990s layout: a header with "THE SMALL PRINT!" licence ending at "*END*THE SMALL PRINT!", no *** markers,
    # "End of The Project Gutenberg Etext of ..." as the last line. ASCII, CRLF.
    faith = books / "London, Jack" / "The Faith of Men.txt"
    (HERE / "gutenberg_faith_of_men_1990s.txt").write_bytes(
        lines_of(faith, 0, 8) + lines_of(faith, 116, 128) + lines_of(faith, 249, 290) + lines_of(faith, 5437, 5447))


if __name__ == "__main__":
    default = os.environ.get("PRETRAIN_STUDIO_DATA") or HERE.parents[2] / "shared" / "data"
    main(Path(sys.argv[1] if len(sys.argv) > 1 else default))

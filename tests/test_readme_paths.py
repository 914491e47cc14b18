"""The READMEs name only files and folders that exist, and no path that exists on one machine only.

A newcomer follows the README from a clone: every link or image target, and every inline-code path that starts
at a top-level folder of the repository (`bench/...`, `tests/...`, `scripts/...`), must be in the repository;
nothing may point outside it (a document in `../shared`, an absolute path of a developer's machine). The one
outside folder a README may name is the optional real-data folder the `real_data` tests read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READMES = [REPO / "README.md", REPO / "README.zh.md", REPO / "tests" / "data" / "README.md",
           REPO / "assets" / "README.md"]
LINK = re.compile(r"\]\(([^)\s#]+)[^)]*\)")
TOP_FOLDERS = ("bench/", "tests/", "scripts/", "docs/", "assets/", "pretrain_studio/", ".ci/")
# A document beside the checkout, or a developer machine's home folders (written in pieces so that this test
# file does not itself hold such a path).
OUTSIDE = re.compile(r"\.\./shared/(?!data\b)[^\s`)]*|" + "|".join(rf"/{root}/[^\s`)]*" for root in ("work", "home")))
CODE_PATH = re.compile(r"`((?:%s)[^`\s]*)" % "|".join(re.escape(f) for f in TOP_FOLDERS))


def named_paths(readme: Path) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    links = [target for target in LINK.findall(text) if "://" not in target]
    return links + CODE_PATH.findall(text)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_named_path_exists(readme):
    missing = []
    for name in named_paths(readme):
        # `tests/data/authors_{train,dev,test}.csv` names three files; `bench/*.py` a pattern.
        plain = re.sub(r"\{[^}]*\}", "*", name.rstrip("/.,;:"))
        base = REPO if any(name.startswith(f) for f in TOP_FOLDERS) else readme.parent
        if not list(base.glob(plain)) and not (base / plain).exists():
            missing.append(name)
    assert not missing, f"{readme.name} names paths that are not in the repository: {missing}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_path_outside_the_repository(readme):
    text = readme.read_text(encoding="utf-8")
    outside = sorted(set(re.findall(OUTSIDE, text)))
    assert not outside, f"{readme.name} points outside the repository: {outside}"

"""The README settings tables (en and zh) say what the settings schema declares (settings_schema.py).

Each table lists every setting of its job kind in declaration order with its default; in English the meaning
column starts with the setting's help text (the README may say more after it). A setting added, removed,
renamed, reordered or given another default without the tables following fails here, naming it;
`python scripts/settings_tables.py` prints the rows to paste.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pretrain_studio.config import FinetuneConfig, LaunchSettings, PretrainConfig
from pretrain_studio.settings_schema import settings_table

REPO = Path(__file__).resolve().parents[1]
# Each table: the settings declared on that class, its first key, and the settings shown as "(required)".
TABLES = {PretrainConfig: ("corpus_id", ("corpus_id",)), FinetuneConfig: ("dataset_id", ("dataset_id", "base_model")),
          LaunchSettings: ("devices", ())}
KINDS = list(TABLES)
IDS = ["pretrain", "finetune", "launch"]
ROW = re.compile(r"^\| `(\w+)` \| (.+?) \| (.+) \|$")


def readme_table(text: str, first_key: str) -> list[tuple[str, str, str]]:
    """The rows of the table whose first row is `first_key`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| `{first_key}` |"))
    rows = []
    for line in lines[start:]:
        match = ROW.match(line)
        if not match:
            break
        rows.append(match.groups())
    return rows


@pytest.mark.parametrize("readme", ["README.md", "README.zh.md"])
@pytest.mark.parametrize("config", KINDS, ids=IDS)
def test_the_settings_table_lists_every_setting_with_its_default(readme, config):
    first, required = TABLES[config]
    declared = settings_table(config, required=required)
    rows = readme_table((REPO / readme).read_text(encoding="utf-8"), first)
    assert [r[0] for r in rows] == [d[0] for d in declared], f"{readme}: the table of `{first}` and what follows"
    for (key, default, _), (_, want, _) in zip(rows, declared):
        if readme == "README.zh.md":
            want = want.replace("(required)", "（必填）")
        assert default == want, f"{readme}: `{key}` default {default}, declared {want}"


@pytest.mark.parametrize("config", KINDS, ids=IDS)
def test_the_english_table_starts_each_meaning_with_the_help_text(config):
    declared = {key: doc for key, _, doc in settings_table(config)}
    for key, _, meaning in readme_table((REPO / "README.md").read_text(encoding="utf-8"), TABLES[config][0]):
        # The README may set names in code type; the words are the help text's.
        assert meaning.replace("`", "").startswith(declared[key].replace("`", "")), \
            f"README.md: `{key}`: the meaning should start with: {declared[key]}"

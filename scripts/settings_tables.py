#!/usr/bin/env python3
"""Print the README settings tables from the settings schema (settings_schema.settings_table).

    python scripts/settings_tables.py [pretrain|finetune|launch]

Each row is key, default and help text, in declaration order; paste a new setting's row into README.md (and,
translated, README.zh.md). tests/test_settings_tables.py fails while a table and the schema disagree.
"""

from __future__ import annotations

import sys

from pretrain_studio.config import FinetuneConfig, LaunchSettings, PretrainConfig
from pretrain_studio.settings_schema import settings_table

TABLES = {"pretrain": (PretrainConfig, ("corpus_id",)), "finetune": (FinetuneConfig, ("dataset_id", "base_model")),
          "launch": (LaunchSettings, ())}


def main(argv: list[str]) -> int:
    for name in argv or list(TABLES):
        cls, required = TABLES[name]
        print(f"{name}:\n\n| key | default | meaning |\n|---|---|---|")
        for key, default, doc in settings_table(cls, required=required):
            print(f"| `{key}` | {default} | {doc} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Where the team's larger real data sets live, for the benchmarks and the `real_data` tests.

SST-2, AG News, TREC, ChnSentiCorp, Toutiao, WikiText-2, CoNLL-2003 and the full books are not in this
repository (several state no licence). They are looked for in one place, in this order:

1. the folder named by `$PRETRAIN_STUDIO_DATA`;
2. `shared/data` beside the checkout (`../shared/data` seen from the repository root).

The app itself never reads them; nothing here is needed to use Pretrain Studio. This module imports only the
standard library, so a benchmark can call it before its heavy imports (and its `--help` stays instant).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PRETRAIN_STUDIO_DATA"
CHECKOUT = Path(__file__).resolve().parents[1]


class SharedDataMissing(SystemExit):
    """The shared data folder (or a file in it) is not there; a SystemExit so a benchmark stops with the
    message and exit status 1, without a traceback."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def candidates() -> list[Path]:
    """The folders looked at, in order."""
    env = os.environ.get(ENV_VAR)
    return [Path(env)] if env else [CHECKOUT.parent / "shared" / "data"]


def find_shared_data() -> Path | None:
    """The shared data folder, or None when it is not there. A `$PRETRAIN_STUDIO_DATA` that names no folder
    counts as not there (it is never silently replaced by `../shared/data`)."""
    for folder in candidates():
        if folder.is_dir():
            return folder
    return None


def missing_message(what: str = "this needs") -> str:
    looked = ", ".join(str(p) for p in candidates())
    return (f"{what} the shared data folder (not in the repository), which was not found (looked at: {looked}); "
            f"set {ENV_VAR} to the folder that holds sst2/, wikitext2_raw/, ...")


def require_shared_data(*parts: str, what: str = "this benchmark needs") -> Path:
    """The shared data folder, or `parts` inside it (e.g. "sst2", "stsa.binary.train"); raises
    SharedDataMissing with a message that says what to set when it (or that file) is not there."""
    folder = find_shared_data()
    if folder is None:
        raise SharedDataMissing(missing_message(what))
    path = folder.joinpath(*parts)
    if not path.exists():
        raise SharedDataMissing(f"{what} {path}, which is not in the shared data folder {folder}")
    return path

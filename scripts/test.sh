#!/usr/bin/env bash
# One command to set up and run the whole test suite, as CI does:
# Debian's chromium for the browser tests, the venv with the test requirements, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
scripts/setup.sh dev
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# One command for a newcomer: set up and start the app on the embedded default
# (a local ./workspace with a sample corpus). Extra flags go to app.py:
#   scripts/start.sh --host 127.0.0.1 --port 7860 --workspace ./workspace
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec .venv/bin/python app.py "$@"

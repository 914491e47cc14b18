"""`python -m pretrain_studio ...` is the `pretrain-studio` command."""

import sys

from .cli import main

sys.exit(main())

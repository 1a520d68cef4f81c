"""``python -m hartutor``: the same as the ``hartutor`` console script."""

import sys

from hartutor.cli import console_main

sys.exit(console_main())

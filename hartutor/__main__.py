"""``python -m hartutor``: the same as the ``hartutor`` console script."""

import sys

from hartutor.cli import main

sys.exit(main())

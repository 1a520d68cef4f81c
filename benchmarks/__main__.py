"""``python -m benchmarks``: every benchmark, its tables, and ``docs/benchmarks.md``."""

from __future__ import annotations

import sys

from benchmarks.run_all import main

if __name__ == "__main__":
    sys.exit(main())

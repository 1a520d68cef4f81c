"""Checkers for the tutorials' exercises, one module per notebook.

Each module registers its checkers with :func:`hartutor.course.exercise`; a notebook calls
:func:`hartutor.course.check` with the exercise's id and the student's answer. The checkers
test the student's own value and explain a wrong one; the solutions stay in the notebooks, in
collapsed cells that the test suite executes.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every checker module of this package (they register themselves on import)."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")

"""Workarounds for a broken torchvision / pytorchvideo pairing, inert where things work.

Two problems are handled, each only when it is actually present:

1. A torchvision wheel whose compiled ops (``torchvision/_C``) cannot load next to the
   installed torch (e.g. the CUDA build of torchvision 0.28 beside a CPU torch 2.13).
   ``import torchvision`` then dies in ``_meta_registrations`` with
   ``RuntimeError: operator torchvision::nms does not exist``, and timm and pytorchvideo
   die with it. The fix: if loading ``_C`` fails, define the ``nms``/``qnms`` operator
   schemas so the fake-op registrations succeed. torchvision still knows its ops are
   missing (``torchvision.extension._has_ops()`` is False), so ``torchvision.ops.nms``
   raises torchvision's own clear error instead of crashing at import time.
2. pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, removed in
   torchvision 0.17. A meta-path finder placed *last* on ``sys.meta_path`` serves that
   name from ``torchvision.transforms._functional_tensor`` only when the real module
   cannot be found.

:func:`install` runs once from ``hartutor/__init__`` before anything imports torchvision.
:func:`report` says what was done, for ``hartutor info``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Operator schemas copied from torchvision/csrc/ops/nms.cpp and quantized/qnms.cpp: the
# only two ops that torchvision's _meta_registrations registers fakes for unguarded.
_TORCHVISION_OP_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
)

REMOVED_MODULE_ALIASES = {
    "torchvision.transforms.functional_tensor": "torchvision.transforms._functional_tensor",
}


@dataclass
class CompatReport:
    """What :func:`install` found and did."""

    torchvision_installed: bool = False
    torchvision_ops_loaded: bool | None = None  # None: not checked (absent or already imported)
    torchvision_ops_error: str | None = None
    defined_op_schemas: list[str] = field(default_factory=list)
    aliases_installed: dict[str, str] = field(default_factory=dict)


_report = CompatReport()
# Keeps each torch.library.Library alive: its schemas vanish when it is garbage-collected.
_op_libraries: dict[str, object] = {}


def find_extension(package: str, name: str = "_C") -> Path | None:
    """Path of a package's compiled extension ``name`` without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = Path(location) / f"{name}{suffix}"
            if candidate.exists():
                return candidate
    return None


def _load_with_torch(path: Path) -> None:
    import torch

    torch.ops.load_library(str(path))


def ensure_torchvision_ops(
    load_library: Callable[[Path], None] = _load_with_torch,
    namespace: str = "torchvision",
    report: CompatReport | None = None,
) -> CompatReport:
    """Make ``import torchvision`` survive when its compiled ops cannot load.

    Loads the extension exactly as torchvision itself would (so a working install is
    unchanged); only if that raises ``OSError``/``ImportError`` are the missing operator
    schemas defined. ``load_library``, ``namespace`` and ``report`` exist for the tests.
    """
    report = _report if report is None else report
    if namespace in sys.modules:  # already imported: whatever happened, happened
        report.torchvision_installed = True
        return report
    ext = find_extension(namespace)
    report.torchvision_installed = importlib.util.find_spec(namespace) is not None
    if ext is None:
        return report
    try:
        load_library(ext)
    except (OSError, ImportError) as err:
        report.torchvision_ops_loaded = False
        report.torchvision_ops_error = f"{type(err).__name__}: {err}"
    else:
        report.torchvision_ops_loaded = True
        return report

    import torch

    library = _op_libraries.setdefault(namespace, torch.library.Library(namespace, "FRAGMENT"))
    for schema in _TORCHVISION_OP_SCHEMAS:
        op_name = schema.split("(", 1)[0]
        if hasattr(getattr(torch.ops, namespace), op_name):
            continue
        library.define(schema)
        report.defined_op_schemas.append(f"{namespace}::{op_name}")
    return report


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves a removed module name from its renamed successor, as a last resort."""

    def __init__(self, aliases: dict[str, str]):
        self.aliases = dict(aliases)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.aliases:
            return None
        try:
            if importlib.util.find_spec(self.aliases[fullname]) is None:
                return None
        except ModuleNotFoundError:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # default module creation

    def exec_module(self, module: types.ModuleType) -> None:
        real = importlib.import_module(self.aliases[module.__name__])
        for key, value in vars(real).items():
            if not (key.startswith("__") and key.endswith("__")):
                setattr(module, key, value)
        module.__doc__ = f"Alias of {real.__name__} installed by hartutor._compat."


def ensure_module_aliases(aliases: dict[str, str] = REMOVED_MODULE_ALIASES) -> CompatReport:
    """Append one :class:`_AliasFinder` to ``sys.meta_path`` (idempotent).

    Because it sits after the standard finders, a module that really exists is always
    found first and the alias is never used.
    """
    for finder in sys.meta_path:
        if isinstance(finder, _AliasFinder) and finder.aliases == aliases:
            return _report
    sys.meta_path.append(_AliasFinder(aliases))
    _report.aliases_installed.update(aliases)
    return _report


def install() -> CompatReport:
    """Apply every workaround that is needed here; safe to call more than once."""
    ensure_torchvision_ops()
    ensure_module_aliases()
    return _report


def report() -> CompatReport:
    """What :func:`install` found and did in this process."""
    return _report

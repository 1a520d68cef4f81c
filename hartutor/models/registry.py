"""A registry of model builders, in the spirit of torchvision's ``get_model``.

Every builder is a function taking keyword-only, typed arguments and returning an
``nn.Module``; presets (``"paper"``, ``"tiny"``) are arguments of the same builder, not
separate classes. Register with :func:`register_model`; build with :func:`build_model`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import TypeVar

from torch import nn

M = TypeVar("M", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[M], M]:
    """Decorator: register a builder under ``name`` (default: the function's name)."""

    def wrapper(builder: M) -> M:
        key = name or builder.__name__
        if key in _BUILDERS and _BUILDERS[key] is not builder:
            raise ValueError(f"model {key!r} is already registered")
        params = inspect.signature(builder).parameters.values()
        positional = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if positional:
            raise TypeError(f"builder {key!r} must take keyword-only arguments, not {positional}")
        _BUILDERS[key] = builder
        return builder

    return wrapper


def list_models() -> list[str]:
    """Names of all registered builders, sorted."""
    _import_builtin_models()
    return sorted(_BUILDERS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; a clear error with close matches otherwise."""
    _import_builtin_models()
    try:
        return _BUILDERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _BUILDERS, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(
            f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_BUILDERS))}"
        ) from None


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model: ``build_model("i3d", preset="tiny", num_classes=10)``."""
    return get_model_builder(name)(**kwargs)


def _import_builtin_models() -> None:
    """Import hartutor's model modules so their builders register themselves."""
    import hartutor.models  # noqa: F401

"""A registry of model builders, in the spirit of torchvision's ``get_model``.

Every builder is a function taking keyword-only, typed arguments and returning an
``nn.Module``; presets (``"paper"``, ``"tiny"``) are arguments of the same builder, not
separate classes. Register with :func:`register_model`; build with :func:`build_model`.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin

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


# Arguments every CLI command sets itself (``--preset``, ``--classes``): not for ``--arg``.
_CLI_OWNED = ("preset", "num_classes")
# Arguments the data decide (RGB or flow channels): a different value could not train.
_DATA_OWNED = ("in_channels",)


def builder_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments of model ``name``'s builder that ``--arg`` may set, with their
    annotated types (``int``, ``float``, ``bool``, ``str`` or a ``Literal`` of choices)."""
    builder = get_model_builder(name)
    hints = typing.get_type_hints(builder)
    settable: dict[str, Any] = {}
    for param in inspect.signature(builder).parameters.values():
        if param.name in _CLI_OWNED + _DATA_OWNED or param.kind is not param.KEYWORD_ONLY:
            continue
        kind = _plain_type(hints.get(param.name))
        if kind is not None:
            settable[param.name] = kind
    return settable


def parse_builder_arguments(name: str, items: Sequence[str]) -> dict[str, Any]:
    """``["fusion=slow", "segments=3"]`` -> ``{"fusion": "slow", "segments": 3}`` for model
    ``name``, each value converted to the builder's annotated type.

    Raises ``ValueError`` with one line naming the argument and what the builder accepts, so a
    typo is refused before any model is built or trained.
    """
    settable = builder_arguments(name)
    known = ", ".join(f"{k} ({_describe(t)})" for k, t in settable.items()) or "none"
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--arg wants KEY=VALUE, got {item!r}")
        if key in _CLI_OWNED:
            flag = "--preset" if key == "preset" else "--classes"
            raise ValueError(f"set {key} with {flag}, not --arg")
        if key in _DATA_OWNED:
            raise ValueError(f"{key} follows the data (RGB or flow); it is not an --arg")
        if key not in settable:
            raise ValueError(f"model {name!r} has no argument {key!r}; it takes: {known}")
        if key in parsed:
            raise ValueError(f"--arg {key} is given twice")
        parsed[key] = _convert(key, text.strip(), settable[key])
    return parsed


def _plain_type(hint: Any) -> Any:
    """The one plain type (or Literal) behind a hint such as ``int | None``; None if several."""
    if get_origin(hint) is Literal:
        return hint
    if hint in (int, float, bool, str):
        return hint
    if get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    options = [a for a in get_args(hint) if a is not type(None)]
    if len(options) == 1:
        return _plain_type(options[0])
    return None


def _describe(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return " | ".join(map(str, get_args(kind)))
    return kind.__name__


def _convert(key: str, text: str, kind: Any) -> Any:
    if get_origin(kind) is Literal:
        for choice in get_args(kind):
            if str(choice) == text:
                return choice
        raise ValueError(f"--arg {key}={text!r}: choose one of {_describe(kind)}")
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"--arg {key}={text!r}: give true or false")
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"--arg {key}={text!r}: not a valid {kind.__name__}") from None
    if isinstance(value, float) and value != value:
        raise ValueError(f"--arg {key}={text!r}: not a number")
    return value


def _import_builtin_models() -> None:
    """Import hartutor's model modules so their builders register themselves."""
    import hartutor.models  # noqa: F401

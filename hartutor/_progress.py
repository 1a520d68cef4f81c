"""Progress bars over data loaders that open each loader once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def _items(iterable: Iterable[T]) -> Iterator[T]:
    yield from iterable


def progress_bar(iterable: Iterable[T], **options: Any) -> Any:
    """``tqdm.auto.tqdm`` over ``iterable``, which it iterates exactly once.

    tqdm.auto's bar (the asyncio-aware ``tqdm_asyncio``) calls ``iter()`` on an iterable in its
    constructor, then again when the loop starts. For a DataLoader that first iterator is thrown
    away, but it has already started a worker pool (``num_workers`` > 0) and drawn from the
    loader's generator, which shifts the shuffled order. A generator is iterated in place.
    """
    from tqdm.auto import tqdm

    if "total" not in options:
        with contextlib.suppress(TypeError):  # an iterable without a length: no total
            options["total"] = len(iterable)  # type: ignore[arg-type]
    return tqdm(_items(iterable), **options)

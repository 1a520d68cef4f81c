"""One Markdown table writer for every table hartutor prints (CLI, notebooks, docs)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; cells are ``str()``-ed, ``|`` inside them escaped."""
    width = len(header)

    def line(cells: Sequence[object]) -> str:
        if len(cells) != width:
            raise ValueError(f"a row has {len(cells)} cells, the header {width}: {list(cells)}")
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * width, *(line(r) for r in rows)])

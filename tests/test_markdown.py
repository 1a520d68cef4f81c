"""The shared Markdown table writer."""

from __future__ import annotations

import pytest

from hartutor._markdown import markdown_table


def test_markdown_table_layout_and_escaping() -> None:
    text = markdown_table(("a", "b"), [(1, "x|y"), ("", 2.5)])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "|  | 2.5 |"]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        markdown_table(("a", "b", "c"), [(1, 2)])

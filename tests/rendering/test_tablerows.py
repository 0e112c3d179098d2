"""Table lines read as markdown-it reads them (conversations/rendering/tablerows.py).

The streaming renderer splits table rows itself, since markdown-it-py's helpers for that
are not public API. These tests compare it with markdown-it's own parse (public tokens
only) of the version pinned in pyproject.toml: a new version that reads tables
differently fails here first.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.rendering.markdown import MARKDOWN
from conversations.rendering.tablerows import delimiter_aligns, split_cells, trim


@pytest.mark.parametrize(
    ("line", "cells"),
    [
        ("| a | b |", [" a ", " b "]),
        ("a | b", ["a ", " b"]),
        ("| a |", [" a "]),
        ("|", []),
        ("||", [""]),
        ("| a \\| b |", [" a | b "]),
        ("| a \\\\| b |", [" a \\| b "]),
        ("| `co|de` |", [" `co", "de` "]),
        ("\u3000| 日本 |\u00a0", [" 日本 "]),
    ],
)
def test_split_cells(line, cells):
    assert split_cells(line) == cells


@pytest.mark.parametrize(
    ("line", "aligns"),
    [
        ("|---|---|", ["", ""]),
        ("|:--|:-:|--:|", ["left", "center", "right"]),
        ("--|--", ["", ""]),
        ("- |-", None),
        ("|---||---|", None),
        ("|-x-|", None),
        ("|", None),
        ("| - |", [""]),
    ],
)
def test_delimiter_aligns(line, aligns):
    assert delimiter_aligns(line) == aligns


def parsed_table(text: str) -> tuple[list[str], list[list[str]]] | None:
    """Return markdown-it's header alignments and each row's cell contents, or None."""
    tokens = MARKDOWN.parse(text, {})
    if not tokens or tokens[0].type != "table_open":
        return None
    aligns, rows, row = [], [], None
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "th_open":
            aligns.append(str(token.attrGet("style") or "").removeprefix("text-align:"))
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type == "tr_close":
            rows.append(row)
            row = None
    return aligns, rows


CELL_TEXT = st.text(st.sampled_from("ab |\\`*:-\t\u00a0\u3000日"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(header=CELL_TEXT, body=CELL_TEXT)
def test_split_cells_agrees_with_markdown_it(header, body):
    header_line = "|" + header.replace("\n", "") + "|"
    columns = len(split_cells(header_line))
    if columns == 0:
        return
    body_line = "|" + body.replace("\n", "")
    parsed = parsed_table(f"{header_line}\n{'|---' * columns}|\n{body_line}")
    assert parsed is not None
    expected = [trim(cell) for cell in split_cells(header_line)]
    assert parsed[1][0] == expected
    if len(parsed[1]) > 1:  # markdown-it took the body line as a row
        cells = [trim(cell) for cell in split_cells(body_line)][:columns]
        assert parsed[1][1] == cells + [""] * (columns - len(cells))


@settings(max_examples=300, deadline=None)
@given(line=st.text(st.sampled_from("|-: \tx"), min_size=1, max_size=10))
def test_delimiter_aligns_agrees_with_markdown_it(line):
    # Only unindented lines: the streaming renderer leaves indented ones to the parser.
    line = line.lstrip(" \t") or "-"
    aligns = delimiter_aligns(line)
    columns = len(aligns) if aligns else 1
    parsed = parsed_table("|" + " h |" * columns + "\n" + line)
    if not aligns:  # no columns (an empty list) is no delimiter row either
        assert parsed is None
    else:
        assert parsed is not None
        assert parsed[0] == aligns

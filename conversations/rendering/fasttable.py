"""Streaming fast path for a table: finished rows are rendered once, each on its own.

See ``OpenTable``; the table syntax it reads is in ``tablerows``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.token import Token

from conversations.rendering.fastpaths import PLAIN_TEXT
from conversations.rendering.markdown import render_inline
from conversations.rendering.tablerows import (
    MAX_FILLED_CELLS,
    TABLE_HEADER,
    cell_open,
    delimiter_aligns,
    split_cells,
    trim,
)

__all__ = ["OpenTable"]

# A table body line that no text added to it can turn into anything but a row: it starts
# with a pipe or a letter, and no block that ends a table (a terminator of blockquotes:
# fence, blockquote, rule, list, HTML block, heading) or an indented code line can.
_TABLE_ROW_START = re.compile(r"[|]|[^\W\d_]")


@dataclass(slots=True)
class OpenTable:
    """A top-level table, the whole tail, whose rows after the header are rendered alone.

    The header and delimiter rows fix a table's columns and alignments. After them,
    markdown-it decides for each line on its own whether it is another row (the line is
    not blank and does not start a block; see ``table`` in markdown-it's rules) and splits
    it into cells by itself, so one row's HTML depends only on its own line, with one
    exception: the cap on empty cells filled in for short rows counts over the whole body,
    which ``autocompleted`` tracks. A finished line's row is therefore rendered once and
    cached, and each flush renders only the unfinished last line. A line that does not
    clearly start a row (``_TABLE_ROW_START``) goes back to the full parse.

    Each cell's inline content is sanitised on its own (balanced inline markup, as in
    ``fastpaths.OpenInline``); the tags around cells are the sanitised ones, which
    ``find`` checks by rebuilding the starting rendering from the lines and comparing it
    with the parsed one.
    """

    env: dict[str, Any]
    offset: int  # tail offset of the first line not yet rendered for good
    header: str | None  # the header line while the delimiter row is unfinished
    header_cells: tuple[str, ...] = ()  # the header cells' sanitised inline HTML
    head_html: str = ""  # the table up to and including </thead>, once the body started
    cell_opens: tuple[str, ...] = ()  # the <td> start tag of each column
    rows_html: str = ""  # finished body rows
    autocompleted: int = 0  # empty cells filled in so far (markdown-it caps them)

    @classmethod
    def find(
        cls, tokens: Sequence[Token], lines: Sequence[str], tail_html: str, env: dict[str, Any]
    ) -> OpenTable | None:
        """Return the table if the tail is one top-level table, or a header in waiting.

        While the delimiter row is typed, a header line and that unfinished line are a
        table with only a header once the row is valid, and a paragraph until then. A
        header starting with a pipe can't start any other block, and a second line
        starting with a pipe can't end the paragraph, so ``head_state_html`` tells the two
        apart with markdown-it's own delimiter rules (``delimiter_aligns``) and renders
        either without the parser.
        """
        last = len(lines) - 1
        if last == 1:
            fits = bool(TABLE_HEADER.match(lines[0]))
        else:  # the parse found a table spanning the whole tail, body lines included
            end = last if lines[last] == "" else last + 1
            fits = last >= 2 and tokens[0].type == "table_open" and tokens[0].map == [0, end]
        if not fits:
            return None
        table = cls.for_header(lines[0], env)
        html_text = table.render("\n".join(lines))
        return table if html_text == tail_html else None

    @classmethod
    def for_header(cls, header: str, env: dict[str, Any]) -> OpenTable:
        """Return a table in waiting for the header line ``header`` (see ``find``)."""
        table = cls(env, offset=len(header) + 1, header=header)
        table.header_cells = tuple(map(table.cell_html, split_cells(header)))
        return table

    def render(self, tail: str) -> str | None:
        """Return the tail HTML from the rows cached so far; None if unsure.

        Finished body lines are rendered into ``rows_html`` once. When this returns None
        after the body started, ``offset`` is the start of the line that is not a row.
        """
        if self.header is not None:
            delimiter, newline, _ = tail[self.offset :].partition("\n")
            if not newline:
                return self.head_state_html(delimiter)
            if not self.start_body(delimiter):
                return None
        *finished, last = tail[self.offset :].split("\n")
        for line in finished:
            row = self.row(line)
            if row is None:
                return None
            self.rows_html += row[0]
            self.autocompleted += row[1]
            self.offset += len(line) + 1
        last_row = self.row(last) if last else ("", 0)
        return None if last_row is None else self.html_with(last_row[0])

    def head_state_html(self, delimiter: str) -> str | None:
        """Return the tail HTML with ``delimiter`` as the open second line; None if unsure."""
        assert self.header is not None
        aligns = delimiter_aligns(delimiter)
        if aligns and len(aligns) == len(self.header_cells):
            return self.thead_html(aligns) + "</table></div>\n"
        if delimiter and not delimiter.startswith("|"):
            return None
        content = f"{self.header}\n{delimiter}".strip()
        return f"<p>{render_inline(content, self.env)}</p>\n"

    def start_body(self, delimiter: str) -> bool:
        """Fix the columns once the delimiter row is finished; False if it isn't one."""
        aligns = delimiter_aligns(delimiter)
        if not aligns or len(aligns) != len(self.header_cells):
            return False
        self.head_html = self.thead_html(aligns)
        self.cell_opens = tuple(cell_open("td", align) for align in aligns)
        self.header = None
        self.offset += len(delimiter) + 1
        return True

    def thead_html(self, aligns: Sequence[str]) -> str:
        """Return the table's start and header for these column alignments."""
        cells = "".join(
            f"{cell_open('th', align)}{cell}</th>\n"
            for align, cell in zip(aligns, self.header_cells, strict=True)
        )
        return f'<div class="table-scroll"><table>\n<thead>\n<tr>\n{cells}</tr>\n</thead>\n'

    def cell_html(self, cell: str) -> str:
        """Return a cell's sanitised inline HTML (plain text is its own HTML)."""
        content = trim(cell)
        if PLAIN_TEXT.fullmatch(content):
            return content
        return render_inline(content, self.env)

    def row(self, line: str) -> tuple[str, int] | None:
        """Return a body line's ``<tr>`` and its filled-in cells; None if it may not be a row."""
        if not _TABLE_ROW_START.match(line):
            return None
        cells = split_cells(line)
        filled = len(self.cell_opens) - len(cells)
        if self.autocompleted + filled > MAX_FILLED_CELLS:
            return None
        parts = ["<tr>\n"]
        for column, cell_open_tag in enumerate(self.cell_opens):
            content = self.cell_html(cells[column]) if column < len(cells) else ""
            parts.append(f"{cell_open_tag}{content}</td>\n")
        parts.append("</tr>\n")
        return "".join(parts), filled

    def html_with(self, last_html: str) -> str:
        """Return the table HTML with ``last_html`` as the row after the finished ones."""
        rows = self.rows_html + last_html
        body = f"<tbody>\n{rows}</tbody>\n" if rows else ""
        return f"{self.head_html}{body}</table></div>\n"

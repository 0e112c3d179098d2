"""How a GFM table line reads: cells, delimiter rows, alignments (markdown-it's rules).

The streaming renderer renders a table's rows one at a time (``fasttable``), so it must
read a line exactly as markdown-it-py's table rule does. That rule's helpers are not
public API, so the few rules it needs are written here; the streaming tests compare the
result with markdown-it's own rendering for the version pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_FILLED_CELLS",
    "TABLE_HEADER",
    "cell_open",
    "delimiter_aligns",
    "split_cells",
    "trim",
]

# markdown-it ends a table once it has filled in this many empty cells for rows shorter
# than the header, counted over the whole body (a guard against quadratic blow-up).
MAX_FILLED_CELLS = 0x10000

# A header line that starts nothing but a paragraph or a table.
TABLE_HEADER = re.compile(r" {0,3}\|")

# The whitespace markdown-it trims from cells: JavaScript's ``trim`` set minus U+FEFF
# (tab, line feed, vertical tab, form feed, carriage return, space, no-break space, ogham
# space mark, the U+2000 spaces, line and paragraph separators, narrow no-break space,
# medium mathematical space, ideographic space).
_TRIM_CHARS = "".join(
    chr(code)
    for code in sorted(
        {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x1680, 0x202F, 0x205F, 0x3000}
        | set(range(0x2000, 0x200B))
        | {0x2028, 0x2029}
    )
)

# A delimiter row's column: dashes, with a colon at either end for alignment.
_DELIMITER_COLUMN = re.compile(r":?-+:?")


def trim(text: str) -> str:
    """Strip the whitespace markdown-it strips from a table line or cell."""
    return text.strip(_TRIM_CHARS)


def split_cells(line: str) -> list[str]:
    """Split a table line into its (untrimmed) cells; outer pipes are optional.

    A pipe after a backslash is text: the backslash is dropped and the pipe kept in the
    cell. Pipes split cells even inside code spans, as in markdown-it.
    """
    text = trim(line)
    cells: list[str] = []
    current = ""
    start = 0
    escaped = False
    for position, char in enumerate(text):
        if char == "|":
            if escaped:
                current += text[start : position - 1]
                start = position
            else:
                cells.append(current + text[start:position])
                current = ""
                start = position + 1
        escaped = char == "\\"
    cells.append(current + text[start:])
    if cells and cells[0] == "":
        cells.pop(0)
    if cells and cells[-1] == "":
        cells.pop()
    return cells


def delimiter_aligns(line: str) -> list[str] | None:
    """Return the column alignments if ``line`` is a table delimiter row, else None.

    The checks of markdown-it's table rule, for a line without indentation (the rule
    also needs as many columns as the header has). An alignment is "left", "center",
    "right" or "" (none).
    """
    if len(line) < 2 or line[0] not in "|-:" or line[1] not in "|-: \t":
        return None
    if (line[0] == "-" and line[1] in " \t") or line.strip("|-: \t"):
        return None
    columns = line.split("|")
    aligns = []
    for index, column in enumerate(columns):
        text = trim(column)
        if not text:
            if index in (0, len(columns) - 1):
                continue
            return None
        if not _DELIMITER_COLUMN.fullmatch(text):
            return None
        if text.endswith(":"):
            aligns.append("center" if text.startswith(":") else "right")
        else:
            aligns.append("left" if text.startswith(":") else "")
    return aligns


def cell_open(tag: str, align: str) -> str:
    """Return a table cell's start tag, as the sanitised rendering has it."""
    return f'<{tag} class="align-{align}">' if align else f"<{tag}>"

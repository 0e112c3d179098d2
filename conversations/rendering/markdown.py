"""Turn message text into safe HTML: Markdown for answers, plain text for user messages.

Answers are rendered on the server with markdown-it-py (CommonMark, tables, strikethrough,
task lists), code is highlighted with Pygments, and every string this module returns has
been through nh3 with an allow-list of exactly the markup emitted here. Raw HTML in the
source is never interpreted: markdown-it's ``html`` option is off, so it comes out escaped.

While an answer streams, ``StreamingMarkdown`` renders each finished top-level block once
and re-renders only the open tail block, so the work per answer grows with its length
instead of with its length squared.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3
import pygments
from markdown_it import MarkdownIt
from markdown_it.common.utils import mdTrim, unescapeAll
from markdown_it.rules_block.table import MAX_AUTOCOMPLETED_CELLS, escapedSplit, headerLineRe
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "StreamUpdate",
    "StreamingMarkdown",
    "is_web_url",
    "render_markdown",
    "render_plain",
]

ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

# A fence info word we are willing to show and look up; anything else is shown as "text".
_LANGUAGE_NAME = re.compile(r"[\w+#.-]{1,32}")

_COPY_BUTTON = (
    '<button type="button" class="copy-button" data-copy-target="code" '
    'aria-label="Copy code">Copy</button>'
)

_FORMATTER = HtmlFormatter(nowrap=True)


def relabel_copy_buttons(rendered: str, *, label: str, aria_label: str) -> str:
    """Return rendered Markdown with its code copy buttons labelled in another language."""
    if label == "Copy" and aria_label == "Copy code":
        return rendered
    button = (
        '<button type="button" class="copy-button" data-copy-target="code" '
        f'aria-label="{html.escape(aria_label)}">{html.escape(label)}</button>'
    )
    return rendered.replace(_COPY_BUTTON, button)


_SANITIZER = nh3.Cleaner(
    tags=(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "br", "ul", "ol", "li"}
        | {"a", "em", "strong", "s", "del", "code", "span"}
        | {"div", "pre", "button", "input"}
        | {"table", "thead", "tbody", "tr", "th", "td"}
    ),
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    tag_attribute_values={
        "button": {"type": {"button"}, "data-copy-target": {"code"}, "aria-label": {"Copy code"}},
        "input": {"type": {"checkbox"}, "checked": {"checked"}, "disabled": {"disabled"}},
    },
    set_tag_attribute_values={"a": {"target": "_blank"}},
    allowed_classes={
        "a": {"image-link"},
        "div": {"code-block", "code-head", "table-scroll"},
        "span": {"code-lang"} | {name for name in STANDARD_TYPES.values() if name},
        "button": {"copy-button"},
        "pre": {"highlight"},
        "ul": {"contains-task-list"},
        "ol": {"contains-task-list"},
        "li": {"task-list-item"},
        "input": {"task-list-item-checkbox"},
        "th": {"align-left", "align-center", "align-right"},
        "td": {"align-left", "align-center", "align-right"},
    },
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # Relative links would point into this app (same origin, the user's session); a model
    # has no business producing them.
    url_relative="deny",
    link_rel="noopener noreferrer",
)


def render_markdown(text: str) -> str:
    """Return sanitised HTML for an assistant answer written in Markdown.

    Images are never emitted as ``<img>``: a model (or a web page it quotes through prompt
    injection) could otherwise make every viewer's browser fetch an arbitrary URL without a
    click, which leaks their IP address and can exfiltrate conversation text in the query
    string. Each image becomes a plain link (class ``image-link``) labelled with its alt
    text, so fetching it takes a deliberate click.
    """
    env: dict[str, Any] = {}
    return _render_tokens(_MARKDOWN.parse(text, env), env)


def render_plain(text: str) -> str:
    """Return a user's message as escaped text; the wrapper's CSS keeps line breaks and spaces.

    Nothing is interpreted: ``html.escape`` turns every ``<``, ``>``, ``&`` and quote into an
    entity, so the only markup in the result is the wrapper written here.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    return f'<div class="plain-text">{html.escape(normalized)}</div>'


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What changed in a streaming answer since the previous flush.

    ``appended_html`` holds newly finished blocks (append them once, before the tail);
    ``tail_html`` is the whole open block (replace the tail element with it). ``sequence``
    counts non-empty updates, so a late joiner's snapshot and later updates line up.
    """

    appended_html: str
    tail_html: str
    tail_changed: bool
    sequence: int

    @property
    def is_empty(self) -> bool:
        """Return whether there is nothing to send."""
        return not self.appended_html and not self.tail_changed


class StreamingMarkdown:
    """Render an answer while it streams, rendering each finished top-level block once.

    The source not yet committed (the tail) is parsed on every flush. Every top-level block
    before the last one is committed as soon as no later text can change it (see
    ``_is_final_boundary``); its HTML is returned once in ``appended_html`` and cached for
    snapshots. The tail is normally one block, so per-flush work is bounded by the size of
    the block being written, not the answer. An unclosed fenced code block, the one block
    that routinely grows large, is not re-parsed at all: new complete lines are highlighted
    and appended to a cached rendering until its closing fence arrives.

    Most flushes only add words to the last line of a paragraph, list item or heading.
    Parsing the whole tail again for that is the main per-flush cost, so ``_OpenInline``
    handles it without the block parser: plain words are spliced into the cached HTML, and
    other text on that line re-parses only the last paragraph's inline text (see there).
    A new line always goes through the full parse, which decides block structure, except
    for a line end alone or a new item in a tight bullet list (``_OpenInline.next_line``),
    and in a table: ``_OpenTable`` renders the header while its delimiter row is typed and
    then each body row on its own (see there). When a block handled by these fast paths
    ends (a blank line, then a line that starts another block), its cached HTML is
    committed as it is and only the new line is parsed (``_commit_closed``).

    The streamed HTML equals ``render_markdown(text)`` of the same text, except where
    Markdown itself looks ahead further than the text seen so far:

    - a reference-style link used before its ``[label]: url`` definition: a block
      committed before the definition was complete shows literal text (or, if a
      half-written definition arrived in the same flush, a link to the partial URL);
    - an answer that ends inside an unclosed fence keeps the line-by-line highlighting
      (its unfinished last line unhighlighted), whose colours can differ from
      highlighting the code in one piece (the text is the same);
    - a whole list is one block, so a long list other than a tight bullet list of
      one-paragraph items is re-parsed on each new line until the first line after it
      (correct, only slower).

    ``finish()`` renders the complete text once and is the authority for the final swap.
    """

    def __init__(self) -> None:
        self._done_source: list[str] = []
        self._done_html: list[str] = []
        self._references: dict[str, Any] = {}
        self._tail = ""
        self._tail_html = ""
        self._after_cr = False  # whether the last delta ended with "\r"
        self._dirty = False
        self._fence: _OpenFence | None = None
        self._inline: _OpenInline | None = None
        self._table: _OpenTable | None = None
        # A block a fast path saw end at a line end: (tail offset of that line end, its
        # HTML, its parse env, whether blank lines may continue it); see _commit_closed.
        self._closed: tuple[int, str, dict[str, Any], bool] | None = None
        self.sequence = 0
        self.parsed_chars = 0  # characters handed to the Markdown parser: a work counter

    @property
    def text(self) -> str:
        """Return the source received so far, with line endings normalised."""
        return "".join(self._done_source) + self._tail

    def append(self, delta: str) -> None:
        """Add a text delta without rendering; ``flush()`` reports the result."""
        if not delta:
            return
        # A "\r" ending the previous delta was already turned into "\n"; if this delta
        # starts with "\n", the two were one "\r\n" split between deltas.
        if self._after_cr and delta.startswith("\n"):
            delta = delta[1:]
        self._after_cr = delta.endswith("\r")
        # The same normalisation markdown-it applies, so line numbers agree with its maps.
        self._tail += delta.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
        self._dirty = self._dirty or bool(delta)

    def feed(self, delta: str) -> StreamUpdate:
        """Add a text delta and return what changed."""
        self.append(delta)
        return self.flush()

    def flush(self) -> StreamUpdate:
        """Render what arrived since the last flush and return what changed."""
        if not self._dirty:
            return StreamUpdate("", self._tail_html, False, self.sequence)
        self._dirty = False
        tail_html = None
        if self._fence:
            tail_html = self._render_open_fence()
        elif self._inline:
            tail_html = self._render_open_inline()
        elif self._table:
            tail_html = self._render_open_table()
        appended = ""
        if tail_html is None:
            if self._closed is not None:  # set only by a fast path that gave up just now
                appended = self._commit_closed(*self._closed)
                self._closed = None
            more, tail_html = self._render_tail()
            appended += more
        tail_changed = tail_html != self._tail_html
        self._tail_html = tail_html
        if appended or tail_changed:
            self.sequence += 1
        return StreamUpdate(appended, tail_html, tail_changed, self.sequence)

    def blocks_html(self) -> str:
        """Return the finished blocks so far, from cache."""
        return "".join(self._done_html)

    def tail_html(self) -> str:
        """Return the open tail block as of the last flush."""
        return self._tail_html

    def snapshot_html(self) -> str:
        """Return the bubble body as of ``sequence``: finished blocks plus the tail."""
        return self.blocks_html() + self._tail_html

    def finish(self) -> str:
        """Return the whole answer rendered once, for the final swap."""
        text = self.text
        self.parsed_chars += len(text)
        return render_markdown(text)

    def _render_tail(self) -> tuple[str, str]:
        """Parse the tail, commit the blocks that are final, and render the rest."""
        env: dict[str, Any] = {"references": dict(self._references)}
        self.parsed_chars += len(self._tail)
        tokens = _MARKDOWN.parse(self._tail, env)
        blocks = [index for index, token in enumerate(tokens) if _starts_block(token)]
        lines = self._tail.split("\n")
        kept = next(
            (
                position
                for position in range(len(blocks) - 1, 0, -1)
                if _is_final_boundary(tokens[blocks[position - 1]], tokens[blocks[position]], lines)
            ),
            0,
        )
        appended = ""
        if kept:
            first_kept = blocks[kept]
            line = _line_of(tokens[first_kept])
            appended = _render_tokens(tokens[:first_kept], env)
            self._commit(sum(len(text) + 1 for text in lines[:line]), line, appended, env)
            tokens, lines = tokens[first_kept:], lines[line:]
            blocks = [index - first_kept for index in blocks[kept:]]
            for token in tokens:
                if token.map:
                    token.map = [token.map[0] - line, token.map[1] - line]
        if len(blocks) == 1:
            self._fence = _OpenFence.find(tokens[blocks[0]], lines)
        tail_html = _render_tokens(tokens, env)
        self._inline = self._table = None
        if self._fence is None:
            self._inline = _OpenInline.find(tokens, self._tail, lines, tail_html, env)
            if self._inline is None and len(blocks) == 1:
                self._table = _OpenTable.find(tokens, lines, tail_html, env)
        return appended, tail_html

    def _commit(self, length: int, line: int, html_text: str, env: dict[str, Any]) -> None:
        """Move the first ``length`` characters (``line`` lines) of the tail to the done part."""
        self._done_source.append(self._tail[:length])
        self._done_html.append(html_text)
        self._tail = self._tail[length:]
        # Keep only definitions from the committed lines: a half-written one in the tail
        # must not win over its finished form ("first definition wins").
        for label, reference in env["references"].items():
            if label not in self._references and reference["map"][1] <= line:
                self._references[label] = reference

    def _commit_closed(self, end: int, html_text: str, env: dict[str, Any], continues: bool) -> str:
        """Commit the tail up to ``end`` as ``html_text`` if it is final; return what was.

        A fast path saw the tail's blocks end with the line ending at ``end`` and knows
        their HTML. If blank lines follow and then one unfinished line that starts a new
        block no later text can merge into them (``_may_join_above``), the full
        parse would commit the same blocks with the same HTML; committing the cached HTML
        leaves only the new line to parse. A line starting with "[" may be a reference
        definition, which could change links above: that case is left to the full parse.
        """
        rest = self._tail[end:]
        line = rest.lstrip("\n")
        if (
            not rest.startswith("\n\n")
            or "\n" in line
            or line.startswith("[")
            or _may_join_above(line, continues=continues)
        ):
            return ""
        length = len(self._tail) - len(line)
        self._commit(length, self._tail.count("\n", 0, length), html_text, env)
        return html_text

    def _render_open_fence(self) -> str | None:
        """Render the tail, an unclosed code fence, from cached lines; None once it closes."""
        fence = self._fence
        assert fence is not None
        end = self._tail.rfind("\n") + 1
        new_lines = self._tail[fence.scanned : end]
        partial = self._tail[end:]
        if fence.closes(partial) or any(map(fence.closes, new_lines.split("\n"))):
            self._fence = None
            return None
        if new_lines:
            # Pygments closes its spans at each line end, so each batch of lines is balanced
            # HTML and can be sanitised on its own, once, instead of the whole block per flush.
            fence.code_html += _SANITIZER.clean(_highlight_uncached(new_lines, fence.language))
        fence.scanned = end
        # markdown-it drops a last line that is only blanks; do the same.
        partial_html = _escape_text(partial) if partial.strip(" \t") else ""
        head, foot = _clean_code_block_ends(fence.language)
        return head + fence.code_html + partial_html + foot

    def _render_open_inline(self) -> str | None:
        """Render the tail when text was only added to its last line; None if that won't do."""
        inline = self._inline
        assert inline is not None
        added = self._tail[inline.offset :]
        if inline.table_header and "\n" in added:
            header, _, line = self._tail.partition("\n")
            if line and "\n" not in line:
                table = _OpenTable.for_header(header, inline.env)
                tail_html = table.head_state_html(line)
                if tail_html is not None:
                    self._inline, self._table = None, table
                    self.parsed_chars += table.take_parsed()
                    return tail_html
        tail_length = len(self._tail)
        found = inline.next_line(added, tail_length) if "\n" in added else inline.with_text(added)
        if found is None:
            self._inline = None
            head, newline, _ = added.partition("\n")
            if newline:
                end = inline.offset + len(head)  # before next_line() moves the offset
                ended = inline.next_line(head + "\n", end + 1)
                if ended is not None:
                    self._closed = (end, ended[1], inline.env, inline.continues)
            return None
        self._inline, tail_html, parsed = found
        self.parsed_chars += parsed
        return tail_html

    def _render_open_table(self) -> str | None:
        """Render the tail, an open table, from cached rows; None if it may have ended."""
        table = self._table
        assert table is not None
        tail_html = table.render(self._tail)
        if tail_html is None:
            self._table = None
            if table.header is None and self._tail.startswith("\n", table.offset):
                # A blank line ends the table.
                self._closed = (table.offset - 1, table.html_with(""), table.env, False)
            return None
        self.parsed_chars += table.take_parsed()
        return tail_html


@dataclass(slots=True)
class _OpenFence:
    """An unclosed top-level code fence at the start of the tail, highlighted line by line."""

    marker: str
    language: str
    scanned: int  # tail offset up to which complete lines are highlighted
    code_html: str = ""

    @classmethod
    def find(cls, token: Token, lines: Sequence[str]) -> _OpenFence | None:
        """Return the fence if ``token`` is a top-level fence still waiting for its end."""
        if token.type != "fence" or token.map is None:
            return None
        opening = token.map[0]
        # Only unindented fences: their content is the source lines verbatim.
        if opening >= len(lines) - 1 or not lines[opening].startswith(token.markup):
            return None
        fence = cls(token.markup, _fence_language(token.info), 0)
        if any(map(fence.closes, lines[opening + 1 :])):
            return None
        fence.scanned = sum(len(line) + 1 for line in lines[: opening + 1])
        return fence

    def closes(self, line: str) -> bool:
        """Return whether ``line`` is a closing fence for this fence (CommonMark rules)."""
        stripped = line.lstrip(" ")
        return (
            len(line) - len(stripped) <= 3
            and stripped.startswith(self.marker)
            and not stripped.lstrip(self.marker[0]).strip(" \t")
        )


# A table body line that no text added to it can turn into anything but a row: it starts
# with a pipe or a letter, and no block that ends a table (a terminator of blockquotes:
# fence, blockquote, rule, list, HTML block, heading) or an indented code line can.
_TABLE_ROW_START = re.compile(r"[|]|[^\W\d_]")


@dataclass(slots=True)
class _OpenTable:
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
    ``_OpenInline``); the tags around cells are the sanitised ones, which ``find`` checks
    by rebuilding the starting rendering from the lines and comparing it with the parsed one.
    """

    env: dict[str, Any]
    offset: int  # tail offset of the first line not yet rendered for good
    header: str | None  # the header line while the delimiter row is unfinished
    header_cells: tuple[str, ...] = ()  # the header cells' sanitised inline HTML
    head_html: str = ""  # the table up to and including </thead>, once the body started
    cell_opens: tuple[str, ...] = ()  # the <td> start tag of each column
    rows_html: str = ""  # finished body rows
    autocompleted: int = 0  # empty cells filled in so far (markdown-it caps them)
    parsed: int = 0  # cell characters handed to the inline parser, not yet counted

    @classmethod
    def find(
        cls, tokens: Sequence[Token], lines: Sequence[str], tail_html: str, env: dict[str, Any]
    ) -> _OpenTable | None:
        """Return the table if the tail is one top-level table, or a header in waiting.

        While the delimiter row is typed, a header line and that unfinished line are a
        table with only a header once the row is valid, and a paragraph until then. A
        header starting with a pipe can't start any other block, and a second line
        starting with a pipe can't end the paragraph, so ``head_state_html`` tells the two
        apart with markdown-it's own delimiter rules (``_delimiter_aligns``) and renders
        either without the parser.
        """
        last = len(lines) - 1
        if last == 1:
            fits = bool(_TABLE_HEADER.match(lines[0]))
        else:  # the parse found a table spanning the whole tail, body lines included
            end = last if lines[last] == "" else last + 1
            fits = last >= 2 and tokens[0].type == "table_open" and tokens[0].map == [0, end]
        if not fits:
            return None
        table = cls.for_header(lines[0], env)
        html_text = table.render("\n".join(lines))
        table.parsed = 0  # the full parse has counted these characters
        return table if html_text == tail_html else None

    @classmethod
    def for_header(cls, header: str, env: dict[str, Any]) -> _OpenTable:
        """Return a table in waiting for the header line ``header`` (see ``find``)."""
        table = cls(env, offset=len(header) + 1, header=header)
        table.header_cells = tuple(map(table.cell_html, _table_cells(header)))
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

    def take_parsed(self) -> int:
        """Return the characters parsed since the last call, for the work counter."""
        parsed, self.parsed = self.parsed, 0
        return parsed

    def head_state_html(self, delimiter: str) -> str | None:
        """Return the tail HTML with ``delimiter`` as the open second line; None if unsure."""
        assert self.header is not None
        aligns = _delimiter_aligns(delimiter)
        if aligns and len(aligns) == len(self.header_cells):
            return self.thead_html(aligns) + "</table></div>\n"
        if delimiter and not delimiter.startswith("|"):
            return None
        content = f"{self.header}\n{delimiter}".strip()
        self.parsed += len(content)
        return f"<p>{_render_inline(content, self.env)}</p>\n"

    def start_body(self, delimiter: str) -> bool:
        """Fix the columns once the delimiter row is finished; False if it isn't one."""
        aligns = _delimiter_aligns(delimiter)
        if not aligns or len(aligns) != len(self.header_cells):
            return False
        self.head_html = self.thead_html(aligns)
        self.cell_opens = tuple(_cell_open("td", align) for align in aligns)
        self.header = None
        self.offset += len(delimiter) + 1
        return True

    def thead_html(self, aligns: Sequence[str]) -> str:
        """Return the table's start and header for these column alignments."""
        cells = "".join(
            f"{_cell_open('th', align)}{cell}</th>\n"
            for align, cell in zip(aligns, self.header_cells, strict=True)
        )
        return f'<div class="table-scroll"><table>\n<thead>\n<tr>\n{cells}</tr>\n</thead>\n'

    def cell_html(self, cell: str) -> str:
        """Return a cell's sanitised inline HTML (plain text is its own HTML)."""
        content = mdTrim(cell)
        if _PLAIN_TEXT.fullmatch(content):
            return content
        self.parsed += len(content)
        return _render_inline(content, self.env)

    def row(self, line: str) -> tuple[str, int] | None:
        """Return a body line's ``<tr>`` and its filled-in cells; None if it may not be a row."""
        if not _TABLE_ROW_START.match(line):
            return None
        cells = _table_cells(line)
        filled = len(self.cell_opens) - len(cells)
        if self.autocompleted + filled > MAX_AUTOCOMPLETED_CELLS:
            return None
        parts = ["<tr>\n"]
        for column, cell_open in enumerate(self.cell_opens):
            content = self.cell_html(cells[column]) if column < len(cells) else ""
            parts.append(f"{cell_open}{content}</td>\n")
        parts.append("</tr>\n")
        return "".join(parts), filled

    def html_with(self, last_html: str) -> str:
        """Return the table HTML with ``last_html`` as the row after the finished ones."""
        rows = self.rows_html + last_html
        body = f"<tbody>\n{rows}</tbody>\n" if rows else ""
        return f"{self.head_html}{body}</table></div>\n"


def _cell_open(tag: str, align: str) -> str:
    """Return a table cell's start tag, as the sanitised rendering has it."""
    return f'<{tag} class="align-{align}">' if align else f"<{tag}>"


# A header line that starts nothing but a paragraph or a table.
_TABLE_HEADER = re.compile(r" {0,3}\|")


def _delimiter_aligns(line: str) -> list[str] | None:
    """Return the column alignments if ``line`` is a table delimiter row, else None.

    The checks of markdown-it's table rule, for a line without indentation (the rule
    also needs as many columns as the header has).
    """
    if len(line) < 2 or line[0] not in "|-:" or line[1] not in "|-: \t":
        return None
    if (line[0] == "-" and line[1] in " \t") or line.strip("|-: \t"):
        return None
    columns = line.split("|")
    aligns = []
    for index, column in enumerate(columns):
        text = mdTrim(column)
        if not text:
            if index in (0, len(columns) - 1):
                continue
            return None
        if not headerLineRe.search(text):
            return None
        if text.endswith(":"):
            aligns.append("center" if text.startswith(":") else "right")
        else:
            aligns.append("left" if text.startswith(":") else "")
    return aligns


def _table_cells(line: str) -> list[str]:
    """Split a table line into cells as markdown-it does (outer pipes are optional)."""
    cells = escapedSplit(mdTrim(line))
    if cells and cells[0] == "":
        cells.pop(0)
    if cells and cells[-1] == "":
        cells.pop()
    return cells


# Text that renders as itself, changes nothing before it, and can't start a construct that
# later text would close: letters, digits, spaces and punctuation that Markdown ignores
# mid-line. Excluded on purpose: `*_~` (emphasis), backtick, `[]()!<>` (links, images,
# autolinks), `&;` (entities), `\\`, `#` (closing a heading), `|`, tabs, other spaces.
_PLAIN_TEXT = re.compile(r"(?:[^\W_]|[ .,:?'\"/%$@^{}=+-])*")

# A last line whose block role no added text can change: after at most three spaces and
# at most one container or heading marker, it starts with a letter. Markers, fences, rules,
# setext underlines and table delimiter rows all need their special character first (or
# consist only of them), so a letter settles it.
_SETTLED_LINE = re.compile(r" {0,3}(?:(?:[-+*]|\d{1,9}[.)]) {1,4}|> ?|#{1,6} +)?[^\W\d_]")

_LETTER = re.compile(r"[^\W\d_]")

# Characters a parsed inline text token may still hold when a construct is left open and
# later text could close it (emphasis delimiters, code span backticks, link brackets).
_PENDING = re.compile(r"[*_~`\[\]]")

# The inline prefix re-parsed each flush is cut down once it grows past this many characters.
_FREEZE_AFTER = 48


@dataclass(slots=True)
class _OpenInline:
    """The inline text at the end of the tail, for flushes that only extend its last line.

    When the tail ends inside a paragraph, list item paragraph or ATX heading, and its last
    line already starts with a letter (after its marker), text added without a newline
    cannot change the block structure (see ``_SETTLED_LINE``). Nor can it when the tail is
    one paragraph line starting with a pipe (``table_header``): a next line may make it a
    table header, and ``_OpenTable.for_header`` takes over then. Only that block's inline
    content changes, and its rendering sits between fixed HTML: ``before_html`` (all tail
    HTML before it) and ``after_html`` (the closing tags). Two cases:

    - plain words (``_PLAIN_TEXT``) after a plain last character cannot change how the
      earlier text parses and render as themselves, so they are appended to the cached
      HTML without parsing. They contain no ``<``, ``>`` or ``&``, so they stay text inside
      the already-sanitised element; nothing new needs sanitising.
    - anything else (paragraphs only; a heading's closing ``#`` rule is not reproduced) is
      rendered by parsing just the paragraph's inline content. To keep that short in a
      long paragraph, a prefix that ends with a space between words and leaves no construct
      open (``_PENDING``) is rendered once into ``frozen_html``: inline parsing of the rest
      cannot reach back past it.

    Every parsed piece is sanitised by ``_SANITIZER`` on its own. Its allow-list has only
    elements that parse the same anywhere (no raw-text elements such as script or style),
    and the pieces are balanced inline markup, so joining sanitised pieces yields exactly
    the sanitised whole; ``find`` checks that for the starting rendering.
    """

    before_html: str
    after_html: str
    env: dict[str, Any]
    content: str  # the inline source rendered so far, without trailing whitespace
    offset: int  # tail offset of the end of ``content``
    reparse: bool  # whether text other than plain words may be handled here
    frozen: int = 0  # length of the prefix of ``content`` rendered into frozen_html
    frozen_html: str = ""
    live_html: str = ""  # sanitised HTML of content[frozen:]
    freeze_at: int = _FREEZE_AFTER  # live length at which to try freezing a prefix again
    sibling: str = ""  # bullet of the tight top-level list this is the last item of
    table_header: bool = False  # whether this is a one-line tail that may be a table header
    continues: bool = False  # whether the tail's last block may go on after a blank line

    @classmethod
    def find(
        cls,
        tokens: Sequence[Token],
        tail: str,
        lines: Sequence[str],
        tail_html: str,
        env: dict[str, Any],
    ) -> _OpenInline | None:
        """Return the open inline block if the tail ends in one whose last line is settled."""
        index = len(tokens) - 1
        while index > 0 and tokens[index].nesting == -1:
            index -= 1
        if index < 1:
            return None
        inline, opener = tokens[index], tokens[index - 1]
        content = inline.content
        # A paragraph of one line starting with a pipe, the whole tail: only a next line
        # can make it a table header.
        table_header = (
            len(lines) == 1
            and opener.type == "paragraph_open"
            and bool(_TABLE_HEADER.match(lines[0]))
        )
        if (
            inline.type != "inline"
            or inline.map is None
            or inline.map[1] != len(lines)
            or not (
                opener.type == "paragraph_open"
                or (opener.type == "heading_open" and opener.markup.startswith("#"))
            )
            or not content
            # A paragraph starting with "[" may still become a reference definition or,
            # in a list item, a task list checkbox. A task item's text has lost its "[ ]"
            # to the checkbox (an html_inline child), which only a full parse renders.
            or content.startswith("[")
            or any(child.type == "html_inline" for child in inline.children or ())
            or not (_SETTLED_LINE.match(lines[-1]) or table_header)
        ):
            return None
        stripped = lines[-1].rstrip()
        if not stripped.endswith(content.rpartition("\n")[2]):
            return None
        inline_html = _render_tokens([inline], env)
        after_html = _MARKDOWN.renderer.render(tokens[index + 1 :], _MARKDOWN.options, env)
        if not tail_html.endswith(inline_html + after_html):
            return None
        return cls(
            before_html=tail_html[: len(tail_html) - len(inline_html) - len(after_html)],
            after_html=after_html,
            env=env,
            content=content,
            offset=len(tail) - (len(lines[-1]) - len(stripped)),
            reparse=opener.type == "paragraph_open",
            live_html=inline_html,
            sibling=_last_item_bullet(tokens, index, lines),
            table_header=table_header,
            continues=_last_top_level_type(tokens) in _CONTINUES_AFTER_BLANK,
        )

    def next_line(self, added: str, tail_length: int) -> tuple[_OpenInline, str, int] | None:
        """Handle ``added`` when it ends this line, if no block parse is needed for that.

        The text before the line end goes through ``with_text``. Line ends alone after it
        (the text so far ends with them) leave the rendering as it is: an empty last line,
        or blank lines at the very end, change no block before them.

        If this inline is the only paragraph of the last item of a tight top-level bullet
        list (``sibling``), a line of the same bullet at column 0 starts a sibling item: it
        ends this paragraph (whose last line can't be a setext underline or a lazy line)
        and, with no blank line, keeps the list tight, so the HTML so far stays as it is and
        the new item is an ``<li>`` holding its text. Until the new line has its first
        letter it is an empty item (just the bullet), and this inline stays the open one.

        Returns the open inline, the tail HTML and the characters parsed; None if the full
        parse must decide.
        """
        head, _, line = added.partition("\n")
        bullet = self.sibling
        ended = not line.strip("\n")
        empty = bool(bullet) and line in (bullet, bullet + " ")
        starts = bool(bullet) and line.startswith(bullet + " ") and bool(_LETTER.match(line, 2))
        if not (ended or empty or (starts and "\n" not in line)):
            return None
        found = self.with_text(head)
        if found is None or ended:
            return found
        _, item_html, parsed = found
        before_html = item_html.removesuffix(self.after_html) + "</li>\n<li>"
        if empty:
            return self, before_html + self.after_html, parsed
        content = line[2:].rstrip()
        item = _OpenInline(
            before_html=before_html,
            after_html=self.after_html,
            env=self.env,
            content=content,
            offset=tail_length - (len(line) - len(line.rstrip())),
            reparse=True,
            live_html=_render_inline(content, self.env),
            sibling=bullet,
            continues=True,
        )
        return item, item.html_with(""), parsed + len(content)

    def with_text(self, text: str) -> tuple[_OpenInline, str, int] | None:
        """Render ``text`` added to this line, without a newline (see the class).

        Returns this inline, the tail HTML and the characters parsed; None if only the
        full parse can render it. Plain words need a plain character before them too.
        """
        if _PLAIN_TEXT.fullmatch(text) and _PLAIN_TEXT.fullmatch(self.content[-1]):
            # Trailing spaces are stripped from a block's last line, as markdown-it does.
            return self, self.html_with(text.rstrip(" ")), 0
        if not self.reparse:
            return None
        parsed = self.update(text)
        return self, self.html_with(""), parsed

    def html_with(self, plain: str) -> str:
        """Return the tail HTML with ``plain`` (escape-free text) after the inline content."""
        return self.before_html + self.frozen_html + self.live_html + plain + self.after_html

    def update(self, added: str) -> int:
        """Render ``content + added`` (one line's worth); return the characters parsed."""
        kept = added.rstrip()
        self.content += kept
        self.offset += len(kept)
        parsed = 0
        live = self.content[self.frozen :]
        if len(live) >= self.freeze_at:
            parsed += self._freeze(live)
            live = self.content[self.frozen :]
        self.live_html = _render_inline(live, self.env)
        return parsed + len(live)

    def _freeze(self, live: str) -> int:
        """Move a finished prefix of ``live`` into ``frozen_html``; return characters parsed.

        The cut goes after a single space between two non-space characters: markdown-it
        treats the start of a text like a space, so delimiter runs after the cut see the
        same neighbour, and no entity, autolink or line break can span that space.
        """
        cut = live.rfind(" ", 0, len(live) - 1)
        while cut > 0 and (live[cut - 1].isspace() or live[cut + 1].isspace()):
            cut = live.rfind(" ", 0, cut)
        self.freeze_at = len(live) + _FREEZE_AFTER // 2
        if cut <= 0:
            return 0
        prefix = live[: cut + 1]
        tokens = _MARKDOWN.parseInline(prefix, self.env)
        children = tokens[0].children or []
        if any(child.type == "text" and _PENDING.search(child.content) for child in children):
            return len(prefix)
        self.frozen_html += _render_tokens(tokens, self.env)
        self.frozen += len(prefix)
        self.freeze_at = _FREEZE_AFTER
        return len(prefix)


def _last_item_bullet(tokens: Sequence[Token], index: int, lines: Sequence[str]) -> str:
    """Return the bullet if ``tokens[index]`` is the last item's text of a tight list.

    Only a top-level bullet list whose last item starts at column 0 and holds just this
    one paragraph (hidden: the list is tight) qualifies; otherwise return "".
    """
    if index < 3:
        return ""
    paragraph, item, first = tokens[index - 1], tokens[index - 2], tokens[0]
    closing = [token.type for token in tokens[index + 1 :]]
    if (
        first.type != "bullet_list_open"
        or item.type != "list_item_open"
        or item.level != 1
        or item.map is None
        or paragraph.map is None
        or paragraph.map[0] != item.map[0]
        or not paragraph.hidden
        or closing != ["paragraph_close", "list_item_close", "bullet_list_close"]
        or not lines[item.map[0]].startswith(first.markup + " ")
        or item.attrGet("class")
    ):
        return ""
    return first.markup


def _last_top_level_type(tokens: Sequence[Token]) -> str:
    """Return the type of the last top-level block's opening token ("" if none)."""
    return next(
        (token.type for token in reversed(tokens) if token.level == 0 and token.nesting == 1), ""
    )


def _render_inline(text: str, env: dict[str, Any]) -> str:
    """Return sanitised HTML for inline Markdown, without a paragraph around it."""
    return _render_tokens(_MARKDOWN.parseInline(text, env), env)


def _escape_text(text: str) -> str:
    """Escape text exactly as nh3 serialises a text node (quotes stay as they are)."""
    return (
        text.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


# Blocks that can continue past a blank line, depending on the next line's start.
_CONTINUES_AFTER_BLANK = frozenset({"bullet_list_open", "ordered_list_open", "code_block"})


def _is_final_boundary(before: Token, after: Token, lines: Sequence[str]) -> bool:
    """Return whether no later text can merge block ``after`` into block ``before``.

    Markdown decides block structure line by line, with two short look-aheads: a table
    needs the delimiter row below its header line, and a line that starts a block may
    still change while it is unfinished (``2`` may become ``2. item``, continuing a list).
    """
    start = _line_of(after)
    last = len(lines) - 1  # the unfinished line ("" when the text ends with a newline)
    unfinished = lines[last]
    if start <= last - 2:
        return True
    if start == last - 1:
        return not (unfinished and after.type == "table_open")
    # ``after`` starts on the unfinished line: safe only after a blank line.
    return not lines[start - 1].strip(" \t") and not _may_join_above(
        unfinished, continues=before.type in _CONTINUES_AFTER_BLANK
    )


def _may_join_above(unfinished: str, *, continues: bool) -> bool:
    """Return whether an unfinished line after a blank line may still join the block above.

    An empty or indented line may still become a continuation or indented code; when that
    block can go on after a blank line (``continues``: a list or indented code), so may a
    line that could still become a list item.
    """
    return unfinished[:1] in ("", " ", "\t") or (continues and unfinished[0] in "-+*0123456789")


def _starts_block(token: Token) -> bool:
    """Return whether ``token`` opens a top-level block."""
    return token.level == 0 and token.nesting >= 0 and token.map is not None


def _line_of(token: Token) -> int:
    """Return the first source line of a block token."""
    assert token.map is not None
    return token.map[0]


def _render_tokens(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    """Render parsed tokens to HTML and sanitise it."""
    return _SANITIZER.clean(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, env))


def _fence_language(info: str) -> str:
    """Return the language named by a fence info string, or "" if it names none we show."""
    words = unescapeAll(info).split(maxsplit=1)
    return words[0] if words and _LANGUAGE_NAME.fullmatch(words[0]) else ""


@functools.lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    """Return the Pygments lexer for a fence language, or None to show plain text."""
    try:
        # Keep leading/trailing newlines so highlighted text matches the source exactly.
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def _highlight_uncached(code: str, language: str) -> str:
    """Return ``code`` as escaped HTML, with Pygments spans if the language is known."""
    lexer = _lexer_for(language) if language and code else None
    if lexer is None:
        return html.escape(code, quote=False)
    highlighted = pygments.highlight(code, lexer, _FORMATTER)
    # The formatter ends every line, even a last one the code leaves open.
    return highlighted if code.endswith("\n") else highlighted.removesuffix("\n")


# A closed fence is rendered again on each flush until the next block starts, and once more
# by finish(); caching makes those repeats free.
_highlight = functools.lru_cache(maxsize=256)(_highlight_uncached)


def _code_block_markup(code_html: str, language: str) -> str:
    """Wrap highlighted code in the block the page adds a copy button behaviour to."""
    return (
        '<div class="code-block"><div class="code-head">'
        f'<span class="code-lang">{html.escape(language or "text")}</span>{_COPY_BUTTON}</div>'
        f'<pre class="highlight"><code>{code_html}</code></pre></div>\n'
    )


@functools.lru_cache(maxsize=128)
def _clean_code_block_ends(language: str) -> tuple[str, str]:
    """Return the sanitised code block markup before and after the code, for open fences."""
    head, found, foot = _SANITIZER.clean(_code_block_markup("", language)).partition(
        "<code></code>"
    )
    assert found, "the sanitiser must keep an empty <code> element"
    return head + "<code>", "</code>" + foot


def _render_fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    language = _fence_language(tokens[idx].info)
    return _code_block_markup(_highlight(tokens[idx].content, language), language)


def _render_indented_code(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    return _code_block_markup(_highlight(tokens[idx].content, ""), "")


def _render_table_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return '<div class="table-scroll"><table>\n'


def _render_table_close(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    return "</table></div>\n"


def _render_cell_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Emit column alignment as a class: inline styles would need a weaker CSP."""
    token = tokens[idx]
    align = str(token.attrGet("style") or "").removeprefix("text-align:")
    return f'<{token.tag} class="align-{align}">' if align else f"<{token.tag}>"


def is_web_url(url: object) -> bool:
    """Return whether ``url`` is an absolute http(s) URL (safe as an ``href``)."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _is_allowed_url(url: object) -> bool:
    """Return whether ``url`` is an absolute http(s) or mailto URL."""
    try:
        return urlsplit(str(url)).scheme.lower() in ALLOWED_URL_SCHEMES
    except ValueError:
        return False


def _make_links_safe(state: StateCore) -> None:
    """Unwrap links to other schemes and turn images into links (see ``render_markdown``)."""
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = list(_safe_inline(token.children))


def _safe_inline(children: Sequence[Token]) -> Iterator[Token]:
    kept_links: list[bool] = []
    for token in children:
        if token.type == "link_open":
            kept_links.append(_is_allowed_url(token.attrGet("href")))
            if kept_links[-1]:
                yield token
        elif token.type == "link_close":
            if kept_links.pop():
                yield token
        elif token.type == "image":
            yield from _image_as_link(token, inside_link=any(kept_links))
        else:
            yield token


_ALT_TEXT_TYPES = frozenset({"text", "code_inline"})


def _image_as_link(image: Token, *, inside_link: bool) -> Iterator[Token]:
    source = image.attrGet("src")
    alt = "".join(child.content for child in image.children or () if child.type in _ALT_TEXT_TYPES)
    label = Token("text", "", 0, content=alt or str(source))
    if inside_link or not _is_allowed_url(source):
        yield label
        return
    yield Token("link_open", "a", 1, attrs={"href": str(source), "class": "image-link"})
    yield label
    yield Token("link_close", "a", -1)


def _build_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "xhtmlOut": False})
    md.enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.core.ruler.push("safe_links", _make_links_safe)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_indented_code)
    md.add_render_rule("table_open", _render_table_open)
    md.add_render_rule("table_close", _render_table_close)
    md.add_render_rule("th_open", _render_cell_open)
    md.add_render_rule("td_open", _render_cell_open)
    return md


# Shared by all threads: parsing and rendering keep their state in per-call objects.
_MARKDOWN = _build_markdown()

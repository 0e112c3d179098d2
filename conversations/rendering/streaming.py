"""Render an answer while it streams: finished blocks once, then only the open tail.

``StreamingMarkdown`` keeps the work per answer growing with its length instead of with
its length squared. Its fast paths (``fastpaths``, ``fasttable``) avoid even re-parsing
the open block in the common cases; ``StreamingMarkdown(fast_paths=False)`` turns them
off, which the tests use to check both ways against rendering the whole text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.token import Token

from conversations.rendering.fastpaths import CONTINUES_AFTER_BLANK, OpenFence, OpenInline
from conversations.rendering.fasttable import OpenTable
from conversations.rendering.highlight import clean_code_block_ends, highlight_uncached
from conversations.rendering.markdown import MARKDOWN, render_tokens
from conversations.rendering.sanitise import clean, escape_text

__all__ = ["StreamUpdate", "StreamingMarkdown"]


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What changed in a streaming answer since the previous flush.

    ``appended_html`` holds newly finished blocks (append them once, before the tail);
    ``tail_html`` is the whole open block (replace the tail element with it).
    """

    appended_html: str
    tail_html: str
    tail_changed: bool

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
    the block being written, not the answer.

    The fast paths (unless ``fast_paths=False``) go further. An unclosed fenced code block,
    the one block that routinely grows large, is not re-parsed at all: new complete lines
    are highlighted and appended to a cached rendering until its closing fence arrives
    (``OpenFence``). Most flushes only add words to the last line of a paragraph, list
    item or heading; ``OpenInline`` handles that without the block parser: plain words
    are spliced into the cached HTML, and other text on that line re-parses only the last
    paragraph's inline text. A new line always goes through the full parse, which decides
    block structure, except for a line end alone or a new item in a tight bullet list
    (``OpenInline.next_line``), and in a table: ``OpenTable`` renders the header while its
    delimiter row is typed and then each body row on its own. When a block handled by
    these fast paths ends (a blank line, then a line that starts another block), its cached
    HTML is committed as it is and only the new line is parsed (``_commit_closed``).

    The streamed HTML equals ``render_markdown(text)`` of the same text, except where
    Markdown itself looks ahead further than the text seen so far:

    - a reference-style link used before its ``[label]: url`` definition: a block
      committed before the definition was complete shows literal text (or, if a
      half-written definition arrived in the same flush, a link to the partial URL);
    - with the fast paths, an answer that ends inside an unclosed fence keeps the
      line-by-line highlighting (its unfinished last line unhighlighted), whose colours
      can differ from highlighting the code in one piece (the text is the same);
    - a whole list is one block, so a long list other than a tight bullet list of
      one-paragraph items is re-parsed on each new line until the first line after it
      (correct, only slower).

    The finished answer is therefore rendered once more, whole, for the final swap.
    """

    def __init__(self, *, fast_paths: bool = True) -> None:
        self.fast_paths = fast_paths
        self._done_source: list[str] = []
        self._done_html: list[str] = []
        self._references: dict[str, Any] = {}
        self._tail = ""
        self._tail_html = ""
        self._after_cr = False  # whether the last delta ended with "\r"
        self._dirty = False
        self._fence: OpenFence | None = None
        self._inline: OpenInline | None = None
        self._table: OpenTable | None = None
        # A block a fast path saw end at a line end: (tail offset of that line end, its
        # HTML, its parse env, whether blank lines may continue it); see _commit_closed.
        self._closed: tuple[int, str, dict[str, Any], bool] | None = None

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
            return StreamUpdate("", self._tail_html, False)
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
        return StreamUpdate(appended, tail_html, tail_changed)

    def blocks_html(self) -> str:
        """Return the finished blocks so far, from cache."""
        return "".join(self._done_html)

    def tail_html(self) -> str:
        """Return the open tail block as of the last flush."""
        return self._tail_html

    def _render_tail(self) -> tuple[str, str]:
        """Parse the tail, commit the blocks that are final, and render the rest."""
        env: dict[str, Any] = {"references": dict(self._references)}
        tokens = MARKDOWN.parse(self._tail, env)
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
            appended = render_tokens(tokens[:first_kept], env)
            self._commit(sum(len(text) + 1 for text in lines[:line]), line, appended, env)
            tokens, lines = tokens[first_kept:], lines[line:]
            blocks = [index - first_kept for index in blocks[kept:]]
            for token in tokens:
                if token.map:
                    token.map = [token.map[0] - line, token.map[1] - line]
        tail_html = render_tokens(tokens, env)
        self._fence = self._inline = self._table = None
        if self.fast_paths:
            self._find_fast_path(tokens, blocks, lines, tail_html, env)
        return appended, tail_html

    def _find_fast_path(
        self,
        tokens: Sequence[Token],
        blocks: Sequence[int],
        lines: Sequence[str],
        tail_html: str,
        env: dict[str, Any],
    ) -> None:
        """Pick the fast path, if any, that can render the next flushes of this tail."""
        if len(blocks) == 1:
            self._fence = OpenFence.find(tokens[blocks[0]], lines)
        if self._fence is None:
            self._inline = OpenInline.find(tokens, self._tail, lines, tail_html, env)
            if self._inline is None and len(blocks) == 1:
                self._table = OpenTable.find(tokens, lines, tail_html, env)

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
            fence.code_html += clean(highlight_uncached(new_lines, fence.language))
        fence.scanned = end
        # markdown-it drops a last line that is only blanks; do the same.
        partial_html = escape_text(partial) if partial.strip(" \t") else ""
        head, foot = clean_code_block_ends(fence.language)
        return head + fence.code_html + partial_html + foot

    def _render_open_inline(self) -> str | None:
        """Render the tail when text was only added to its last line; None if that won't do."""
        inline = self._inline
        assert inline is not None
        added = self._tail[inline.offset :]
        if inline.table_header and "\n" in added:
            header, _, line = self._tail.partition("\n")
            if line and "\n" not in line:
                table = OpenTable.for_header(header, inline.env)
                tail_html = table.head_state_html(line)
                if tail_html is not None:
                    self._inline, self._table = None, table
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
        self._inline, tail_html = found
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
        return tail_html


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
        unfinished, continues=before.type in CONTINUES_AFTER_BLANK
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

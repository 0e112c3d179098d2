"""Streaming fast paths: an open code fence and an open line of inline text.

``streaming.StreamingMarkdown`` parses its open tail block on every flush. Most flushes
only add words to the last line of a paragraph, list item or heading, or lines to an
unclosed code fence; these classes render those cases from cached HTML instead of
parsing the block again. Each one knows when it is unsure and hands back to the full
parse (by returning None). ``fasttable`` does the same for tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.token import Token

from conversations.rendering.highlight import fence_language
from conversations.rendering.markdown import MARKDOWN, render_inline, render_tokens
from conversations.rendering.tablerows import TABLE_HEADER

__all__ = ["CONTINUES_AFTER_BLANK", "PLAIN_TEXT", "OpenFence", "OpenInline"]

# Text that renders as itself, changes nothing before it, and can't start a construct that
# later text would close: letters, digits, spaces and punctuation that Markdown ignores
# mid-line. Excluded on purpose: `*_~` (emphasis), backtick, `[]()!<>` (links, images,
# autolinks), `&;` (entities), `\\`, `#` (closing a heading), `|`, tabs, other spaces.
PLAIN_TEXT = re.compile(r"(?:[^\W_]|[ .,:?'\"/%$@^{}=+-])*")

# Blocks that can continue past a blank line, depending on the next line's start.
CONTINUES_AFTER_BLANK = frozenset({"bullet_list_open", "ordered_list_open", "code_block"})

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
class OpenFence:
    """An unclosed top-level code fence at the start of the tail, highlighted line by line."""

    marker: str
    language: str
    scanned: int  # tail offset up to which complete lines are highlighted
    code_html: str = ""

    @classmethod
    def find(cls, token: Token, lines: Sequence[str]) -> OpenFence | None:
        """Return the fence if ``token`` is a top-level fence still waiting for its end."""
        if token.type != "fence" or token.map is None:
            return None
        opening = token.map[0]
        # Only unindented fences: their content is the source lines verbatim.
        if opening >= len(lines) - 1 or not lines[opening].startswith(token.markup):
            return None
        fence = cls(token.markup, fence_language(token.info), 0)
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


@dataclass(slots=True)
class OpenInline:
    """The inline text at the end of the tail, for flushes that only extend its last line.

    When the tail ends inside a paragraph, list item paragraph or ATX heading, and its last
    line already starts with a letter (after its marker), text added without a newline
    cannot change the block structure (see ``_SETTLED_LINE``). Nor can it when the tail is
    one paragraph line starting with a pipe (``table_header``): a next line may make it a
    table header, and ``fasttable.OpenTable.for_header`` takes over then. Only that block's
    inline content changes, and its rendering sits between fixed HTML: ``before_html``
    (all tail HTML before it) and ``after_html`` (the closing tags). Two cases:

    - plain words (``PLAIN_TEXT``) after a plain last character cannot change how the
      earlier text parses and render as themselves, so they are appended to the cached
      HTML without parsing. They contain no ``<``, ``>`` or ``&``, so they stay text inside
      the already-sanitised element; nothing new needs sanitising.
    - anything else (paragraphs only; a heading's closing ``#`` rule is not reproduced) is
      rendered by parsing just the paragraph's inline content. To keep that short in a
      long paragraph, a prefix that ends with a space between words and leaves no construct
      open (``_PENDING``) is rendered once into ``frozen_html``: inline parsing of the rest
      cannot reach back past it.

    Every parsed piece is sanitised on its own. The allow-list has only elements that
    parse the same anywhere (no raw-text elements such as script or style), and the
    pieces are balanced inline markup, so joining sanitised pieces yields exactly the
    sanitised whole; ``find`` checks that for the starting rendering.
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
    ) -> OpenInline | None:
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
            and bool(TABLE_HEADER.match(lines[0]))
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
        inline_html = render_tokens([inline], env)
        after_html = render_tokens(tokens[index + 1 :], env, sanitise=False)
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
            continues=last_top_level_type(tokens) in CONTINUES_AFTER_BLANK,
        )

    def next_line(self, added: str, tail_length: int) -> tuple[OpenInline, str] | None:
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

        Returns the open inline and the tail HTML; None if the full parse must decide.
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
        item_html = found[1]
        before_html = item_html.removesuffix(self.after_html) + "</li>\n<li>"
        if empty:
            return self, before_html + self.after_html
        content = line[2:].rstrip()
        item = OpenInline(
            before_html=before_html,
            after_html=self.after_html,
            env=self.env,
            content=content,
            offset=tail_length - (len(line) - len(line.rstrip())),
            reparse=True,
            live_html=render_inline(content, self.env),
            sibling=bullet,
            continues=True,
        )
        return item, item.html_with("")

    def with_text(self, text: str) -> tuple[OpenInline, str] | None:
        """Render ``text`` added to this line, without a newline (see the class).

        Returns this inline and the tail HTML; None if only the full parse can render it.
        Plain words need a plain character before them too.
        """
        if not text:
            return self, self.html_with("")
        if PLAIN_TEXT.fullmatch(text) and PLAIN_TEXT.fullmatch(self.content[-1]):
            # Trailing spaces are stripped from a block's last line, as markdown-it does.
            return self, self.html_with(text.rstrip(" "))
        if not self.reparse:
            return None
        self.update(text)
        return self, self.html_with("")

    def html_with(self, plain: str) -> str:
        """Return the tail HTML with ``plain`` (escape-free text) after the inline content."""
        return self.before_html + self.frozen_html + self.live_html + plain + self.after_html

    def update(self, added: str) -> None:
        """Render ``content + added`` (one line's worth)."""
        kept = added.rstrip()
        self.content += kept
        self.offset += len(kept)
        live = self.content[self.frozen :]
        if len(live) >= self.freeze_at:
            self._freeze(live)
            live = self.content[self.frozen :]
        self.live_html = render_inline(live, self.env)

    def _freeze(self, live: str) -> None:
        """Move a finished prefix of ``live`` into ``frozen_html``.

        The cut goes after a single space between two non-space characters: markdown-it
        treats the start of a text like a space, so delimiter runs after the cut see the
        same neighbour, and no entity, autolink or line break can span that space.
        """
        cut = live.rfind(" ", 0, len(live) - 1)
        while cut > 0 and (live[cut - 1].isspace() or live[cut + 1].isspace()):
            cut = live.rfind(" ", 0, cut)
        self.freeze_at = len(live) + _FREEZE_AFTER // 2
        if cut <= 0:
            return
        prefix = live[: cut + 1]
        tokens = MARKDOWN.parseInline(prefix, self.env)
        children = tokens[0].children or []
        if any(child.type == "text" and _PENDING.search(child.content) for child in children):
            return
        self.frozen_html += render_tokens(tokens, self.env)
        self.frozen += len(prefix)
        self.freeze_at = _FREEZE_AFTER


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


def last_top_level_type(tokens: Sequence[Token]) -> str:
    """Return the type of the last top-level block's opening token ("" if none)."""
    return next(
        (token.type for token in reversed(tokens) if token.level == 0 and token.nesting == 1), ""
    )

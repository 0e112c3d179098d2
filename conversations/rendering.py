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
from markdown_it.common.utils import unescapeAll
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

    The streamed HTML equals ``render_markdown(text)`` of the same text, except where
    Markdown itself looks ahead further than the text seen so far:

    - a reference-style link used before its ``[label]: url`` definition: a block
      committed before the definition was complete shows literal text (or, if a
      half-written definition arrived in the same flush, a link to the partial URL);
    - an answer that ends inside an unclosed fence keeps the line-by-line highlighting,
      whose colours can differ from highlighting the code in one piece (the text is the
      same);
    - a whole list is one block, so a long list is re-rendered on each flush until the
      first line after it (correct, only slower).

    ``finish()`` renders the complete text once and is the authority for the final swap.
    """

    def __init__(self) -> None:
        self._done_source: list[str] = []
        self._done_html: list[str] = []
        self._references: dict[str, Any] = {}
        self._tail = ""
        self._tail_html = ""
        self._held_cr = False
        self._dirty = False
        self._fence: _OpenFence | None = None
        self.sequence = 0
        self.parsed_chars = 0  # characters handed to the Markdown parser: a work counter

    @property
    def text(self) -> str:
        """Return the source received so far, with line endings normalised."""
        return "".join(self._done_source) + self._tail + ("\n" if self._held_cr else "")

    def append(self, delta: str) -> None:
        """Add a text delta without rendering; ``flush()`` reports the result."""
        if self._held_cr:
            delta = "\r" + delta
        # A "\r" at the end may be the first half of "\r\n"; hold it for the next delta.
        self._held_cr = delta.endswith("\r")
        if self._held_cr:
            delta = delta[:-1]
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
        tail_html = self._render_open_fence() if self._fence else None
        appended = ""
        if tail_html is None:
            appended, tail_html = self._render_tail()
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
        return appended, _render_tokens(tokens, env)

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
        fence.code_html += _highlight_uncached(new_lines, fence.language)
        fence.scanned = end
        # markdown-it drops a last line that is only blanks; do the same.
        partial_html = html.escape(partial) if partial.strip(" \t") else ""
        return _SANITIZER.clean(_code_block_markup(fence.code_html + partial_html, fence.language))


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
    # ``after`` starts on the unfinished line: safe only after a blank line, and only if
    # the line cannot yet turn into a continuation of a list or an indented code block.
    return (
        not lines[start - 1].strip(" \t")
        and unfinished[:1] not in ("", " ", "\t")
        and (before.type not in _CONTINUES_AFTER_BLANK or unfinished[0] not in "-+*0123456789")
    )


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

"""Turn message text into safe HTML: Markdown for answers, plain text for user messages.

Answers are rendered on the server with markdown-it-py (CommonMark, tables, strikethrough,
task lists), code is highlighted with Pygments (``highlight``), and every string this
module returns has been through the sanitiser's allow-list (``sanitise``). Raw HTML in
the source is never interpreted: markdown-it's ``html`` option is off, so it comes out
escaped. A streaming answer is rendered block by block by ``streaming.StreamingMarkdown``.

Only markdown-it-py's public API is used (``MarkdownIt``, ``Token``, render and core
rules), so the streaming fast paths, which reproduce some of its rules, are checked
against the version pinned in ``pyproject.toml`` by the tests.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin

from conversations.rendering.highlight import code_block_markup, fence_language, highlight
from conversations.rendering.sanitise import clean, is_allowed_url
from conversations.rendering.tablerows import cell_open

if TYPE_CHECKING:
    from markdown_it.rules_core import StateCore

__all__ = [
    "MARKDOWN",
    "render_inline",
    "render_markdown",
    "render_plain",
    "render_tokens",
]


def render_markdown(text: str) -> str:
    """Return sanitised HTML for an assistant answer written in Markdown.

    Images are never emitted as ``<img>``: a model (or a web page it quotes through prompt
    injection) could otherwise make every viewer's browser fetch an arbitrary URL without a
    click, which leaks their IP address and can exfiltrate conversation text in the query
    string. Each image becomes a plain link (class ``image-link``) labelled with its alt
    text, so fetching it takes a deliberate click.
    """
    env: dict[str, Any] = {}
    return render_tokens(MARKDOWN.parse(text, env), env)


def render_plain(text: str) -> str:
    """Return a user's message as escaped text; the wrapper's CSS keeps line breaks and spaces.

    Nothing is interpreted: ``html.escape`` turns every ``<``, ``>``, ``&`` and quote into an
    entity, so the only markup in the result is the wrapper written here.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    return f'<div class="plain-text">{html.escape(normalized)}</div>'


def render_tokens(tokens: Sequence[Token], env: dict[str, Any], *, sanitise: bool = True) -> str:
    """Render parsed tokens to HTML and (unless told not to) sanitise it.

    Unsanitised output is only for comparing with or cutting sanitised HTML.
    """
    rendered = MARKDOWN.renderer.render(tokens, MARKDOWN.options, env)
    return clean(rendered) if sanitise else rendered


def render_inline(text: str, env: dict[str, Any]) -> str:
    """Return sanitised HTML for inline Markdown, without a paragraph around it."""
    return render_tokens(MARKDOWN.parseInline(text, env), env)


# --- Render rules: the markup the sanitiser's allow-list expects -------------------------


def _render_fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    language = fence_language(tokens[idx].info)
    return code_block_markup(highlight(tokens[idx].content, language), language)


def _render_indented_code(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    return code_block_markup(highlight(tokens[idx].content, ""), "")


def _render_table_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return '<div class="table-scroll"><table>\n'


def _render_table_close(
    self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    return "</table></div>\n"


def _render_cell_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Emit column alignment as a class: inline styles would need a weaker CSP."""
    token = tokens[idx]
    return cell_open(token.tag, str(token.attrGet("style") or "").removeprefix("text-align:"))


# --- Core rule: links and images (see render_markdown) -----------------------------------


def _make_links_safe(state: StateCore) -> None:
    """Unwrap links to other schemes and turn images into links (see ``render_markdown``)."""
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = list(_safe_inline(token.children))


def _safe_inline(children: Sequence[Token]) -> Iterator[Token]:
    kept_links: list[bool] = []
    for token in children:
        if token.type == "link_open":
            kept_links.append(is_allowed_url(token.attrGet("href")))
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
    if inside_link or not is_allowed_url(source):
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
MARKDOWN = _build_markdown()

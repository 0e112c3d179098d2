"""Code blocks: Pygments highlighting (cached) inside the markup the page styles.

A code block's head holds its language and a copy button. The button has no words: the
renderer's HTML is cached and shared by readers of every language, so the page labels
the button in its reader's language (``static/chatweb/copy.js``).
"""

from __future__ import annotations

import functools
import html
import re

import pygments
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from conversations.rendering.sanitise import clean

__all__ = [
    "COPY_BUTTON",
    "clean_code_block_ends",
    "code_block_markup",
    "fence_language",
    "highlight",
    "highlight_uncached",
]

COPY_BUTTON = '<button type="button" class="copy-button"></button>'

# A fence info word we are willing to show and look up; anything else is shown as "text".
_LANGUAGE_NAME = re.compile(r"[\w+#.-]{1,32}")

# What CommonMark unescapes in a fence's info string: backslash escapes of ASCII
# punctuation and entity references.
_ESCAPE_OR_ENTITY = re.compile(
    r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])|&[a-z#][a-z0-9]{1,31};", re.IGNORECASE
)

_FORMATTER = HtmlFormatter(nowrap=True)


def fence_language(info: str) -> str:
    """Return the language named by a fence info string, or "" if it names none we show."""
    words = _unescape(info).split(maxsplit=1)
    return words[0] if words and _LANGUAGE_NAME.fullmatch(words[0]) else ""


def _unescape(info: str) -> str:
    """Return ``info`` with backslash escapes and entity references resolved."""
    return _ESCAPE_OR_ENTITY.sub(lambda match: match.group(1) or html.unescape(match[0]), info)


@functools.lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    """Return the Pygments lexer for a fence language, or None to show plain text."""
    try:
        # Keep leading/trailing newlines so highlighted text matches the source exactly.
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def highlight_uncached(code: str, language: str) -> str:
    """Return ``code`` as escaped HTML, with Pygments spans if the language is known."""
    lexer = _lexer_for(language) if language and code else None
    if lexer is None:
        return html.escape(code, quote=False)
    highlighted = pygments.highlight(code, lexer, _FORMATTER)
    # The formatter ends every line, even a last one the code leaves open.
    return highlighted if code.endswith("\n") else highlighted.removesuffix("\n")


# A closed fence is rendered again on each flush until the next block starts, and once
# more when the answer is rendered whole; caching makes those repeats free.
highlight = functools.lru_cache(maxsize=256)(highlight_uncached)


def code_block_markup(code_html: str, language: str) -> str:
    """Wrap highlighted code in the block the page adds a copy button behaviour to."""
    return (
        '<div class="code-block"><div class="code-head">'
        f'<span class="code-lang">{html.escape(language or "text")}</span>{COPY_BUTTON}</div>'
        f'<pre class="highlight"><code>{code_html}</code></pre></div>\n'
    )


@functools.lru_cache(maxsize=128)
def clean_code_block_ends(language: str) -> tuple[str, str]:
    """Return the sanitised code block markup before and after the code, for open fences."""
    head, found, foot = clean(code_block_markup("", language)).partition("<code></code>")
    assert found, "the sanitiser must keep an empty <code> element"
    return head + "<code>", "</code>" + foot

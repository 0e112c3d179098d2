"""The allow-list every piece of rendered Markdown passes through, and the URLs it keeps.

Every string the renderer returns has been through ``clean``: nh3 keeps exactly the
markup the renderer emits (tags, attributes, classes and attribute values listed here)
and drops everything else, so a bug in rendering or a library cannot smuggle a script in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nh3
from pygments.token import STANDARD_TYPES

__all__ = ["ALLOWED_URL_SCHEMES", "clean", "escape_text", "is_allowed_url", "is_web_url"]

ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

_CLEANER = nh3.Cleaner(
    tags=(
        {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "br", "ul", "ol", "li"}
        | {"a", "em", "strong", "s", "del", "code", "span"}
        | {"div", "pre", "button", "input"}
        | {"table", "thead", "tbody", "tr", "th", "td"}
    ),
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    tag_attribute_values={
        "button": {"type": {"button"}},
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


def clean(html_text: str) -> str:
    """Return ``html_text`` with everything outside the allow-list removed."""
    return _CLEANER.clean(html_text)


def escape_text(text: str) -> str:
    """Escape text exactly as nh3 serialises a text node (quotes stay as they are).

    The streaming fast paths put text straight into sanitised HTML; escaping it the same
    way keeps their output identical to sanitising the whole block.
    """
    return (
        text.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def is_web_url(url: object) -> bool:
    """Return whether ``url`` is an absolute http(s) URL (safe as an ``href``)."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def is_allowed_url(url: object) -> bool:
    """Return whether ``url`` is an absolute http(s) or mailto URL."""
    try:
        return urlsplit(str(url)).scheme.lower() in ALLOWED_URL_SCHEMES
    except ValueError:
        return False

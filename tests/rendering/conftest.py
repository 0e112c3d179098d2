"""A work counter for the streaming renderer: characters handed to markdown-it's parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conversations.rendering.markdown import MARKDOWN


@dataclass
class ParserWork:
    """Counts the characters every parse of the shared Markdown parser was given."""

    chars: int = 0


@pytest.fixture
def parser_work(monkeypatch) -> ParserWork:
    """Count what the (real, unchanged) parser parses, block and inline alike.

    The streaming fast paths exist to parse less; this measures that from outside,
    without a counter in the renderer that only tests would read.
    """
    work = ParserWork()
    parse, parse_inline = MARKDOWN.parse, MARKDOWN.parseInline

    def counted_parse(src: str, env: Any = None) -> Any:
        work.chars += len(src)
        return parse(src, env)

    def counted_parse_inline(src: str, env: Any = None) -> Any:
        work.chars += len(src)
        return parse_inline(src, env)

    monkeypatch.setattr(MARKDOWN, "parse", counted_parse)
    monkeypatch.setattr(MARKDOWN, "parseInline", counted_parse_inline)
    return work

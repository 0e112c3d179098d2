"""Streaming deltas are built without templates, and must be the `answer_delta` partial.

The page applies whatever it is sent, so a builder that drifted from the partial would
show a different bubble live than after a reload. Each case compares the bytes with the
partial's rendering of the same inputs, in every language the site speaks.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from conversations.pipeline.fragments import Extras, delta_html
from conversations.rendering.streaming import StreamingMarkdown

PARTIAL = "conversations/chat.html#answer_delta"

STREAMED = {
    "plain": "Bread needs flour, water and salt.\n\nThen time.\n\nAnd patience.",
    "special": 'Compare <b>bold</b> & "quotes" with 5 < 6 > 4 and a <script>alert(1)</script>.',
    "chinese": "面包需要面粉、水和盐。\n\n然后是时间。\n\n还有耐心。",
    "code": "Run this:\n\n```python\nif a < b and c > d:\n    print('<&>')\n```\n\nDone.",
    "list and table": "- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEnd.",
}

EXTRAS = {
    "thinking": Extras(reasoning="**Weighing** the <options>", live=True, answer_started=False),
    "searching": Extras(
        searches=[{"status": "searching", "query": 'bread "rise" <time>'}], live=True
    ),
    "tool": Extras(
        tool_calls=[
            {"name": "clock", "ok": False, "duration_ms": 12.4, "arguments": "{}", "output": "<x>"}
        ],
        live=True,
    ),
}


def partial(message_id: int, appended: str, tail: str | None, extras: Extras | None) -> str:
    context = {"message_id": message_id, "appended": appended, "tail": tail, "extras": extras}
    return render_to_string(PARTIAL, context)


def flushes(text: str, step: int = 3):
    """Yield (appended, tail) as a live answer's flushes give them, a few characters each."""
    renderer = StreamingMarkdown()
    for start in range(0, len(text), step):
        update = renderer.feed(text[start : start + step])
        yield update.appended_html, update.tail_html if update.tail_changed else None


@pytest.mark.parametrize("text", STREAMED.values(), ids=STREAMED.keys())
def test_delta_is_the_partial_at_every_flush(text):
    for appended, tail in flushes(text):
        assert delta_html(42, appended, tail) == partial(42, appended, tail, None)


@pytest.mark.parametrize(
    ("appended", "tail"),
    [("", ""), ("", None), ("<p>done</p>\n", None), ("", "<p>中文 &amp; more</p>\n")],
    ids=["empty tail", "no tail", "blocks only", "tail only"],
)
def test_delta_is_the_partial_at_the_edges(appended, tail):
    assert delta_html(7, appended, tail) == partial(7, appended, tail, None)


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.parametrize("extras", EXTRAS.values(), ids=EXTRAS.keys())
def test_delta_with_extras_is_the_partial_in_each_language(extras, language):
    with translation.override(language):
        built = delta_html(9, "<p>a</p>\n", "<p>b</p>\n", extras=extras)

        assert built == partial(9, "<p>a</p>\n", "<p>b</p>\n", extras)

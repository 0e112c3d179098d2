"""The streaming delta's markup, built without the template engine.

Every ~50 ms of every streaming answer produces a delta (`fanout.FanOut._flush`), so its
cost is paid hundreds of times a second on a busy process. Rendering the
`answer_delta` partial of `conversations/chat.html` took about 23 µs of CPU, a third of
the flush; the same markup from an f-string takes under 1 µs. The partial stays in the
page as the markup's reference, and tests/pipeline/test_deltas.py checks that both give
the same bytes for the same inputs: change them together.

The delta's own markup holds no words, so it is the same in every language. Only the
extras beside the text (notices, the reasoning summary, tool steps) do: when they
changed, `fragments.delta_html` renders them with their partial, once per language
(`fanout`), which is rare next to the text's deltas, and passes them in here.
"""

from __future__ import annotations

__all__ = ["delta_html"]


def delta_html(message_id: int, appended: str, tail: str | None, *, extras_html: str = "") -> str:
    """Return the `answer_delta` partial's markup: extras, finished blocks, the open tail.

    `appended` and `tail` are sanitised HTML (`rendering.streaming`) and `extras_html`
    the rendered `answer_extras` partial (or ""), inserted as they are, as the partial's
    `|safe` does. `tail` None leaves the page's tail alone.
    """
    blocks = (
        f'<div hx-swap-oob="beforeend:#message-{message_id}-blocks">{appended}</div>'
        if appended
        else ""
    )
    if tail is None:
        return f"\n{extras_html}\n{blocks}\n\n"
    return (
        f"\n{extras_html}\n{blocks}\n"
        f'<div id="message-{message_id}-tail" class="stream-tail" hx-swap-oob="true">{tail}</div>\n'
    )

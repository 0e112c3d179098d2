"""A finished message's HTML, rendered once and kept with the version that made it.

As Zulip keeps `rendered_content` with `rendered_content_version`: the finish path stores
an answer's HTML in its final write and a question's with its insert (`columns`), and
pages read it back (`html_of`). A message stored by an older renderer, or before HTML
was stored at all, is rendered again the first time a page shows it, and the result
is kept by one conditional UPDATE for the next reader. A streaming answer has nothing
stored: its text is still changing, and the live renderer draws it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_

from django.db.models import Case, Q, TextField, Value, When

from conversations.models import Message
from conversations.rendering import version
from conversations.rendering.citations import number_citations
from conversations.rendering.markdown import render_markdown, render_plain

__all__ = ["columns", "html_of", "rendered"]

# Rows filled by one UPDATE: four parameters each, well inside SQLite's 999.
FILL_BATCH = 100


def rendered(*, role: str, text: str, citations: Iterable[dict] = ()) -> str:
    """Render a message's text afresh: plain text for a question, Markdown for an answer.

    An answer's cited spans become numbered links first (`number_citations`), as the
    bubble shows them.
    """
    if role == Message.Role.USER:
        return render_plain(text)
    numbered, _sources = number_citations(text, list(citations))
    return render_markdown(numbered)


def columns(*, role: str, text: str, citations: Iterable[dict] = ()) -> dict:
    """Return the stored-HTML columns for a message written with this final text.

    For the question's insert and the answer's final update, so storing the HTML costs
    no statement of its own.
    """
    return {
        "rendered_html": rendered(role=role, text=text, citations=citations),
        "rendered_version": version.RENDERER_VERSION,
    }


def html_of(messages: Sequence[Message]) -> list[str]:
    """Return each finished message's body HTML, in order, rendering only stale ones.

    The ones rendered here are stored for the next reader, at most `FILL_BATCH` rows
    to an UPDATE.
    """
    current = version.RENDERER_VERSION
    stale: list[tuple[Message, str]] = []
    html: list[str] = []
    for message in messages:
        if message.rendered_version != current:
            fresh = rendered(role=message.role, text=message.text, citations=message.citations)
            stale.append((message, fresh))
            message.rendered_html, message.rendered_version = fresh, current
        html.append(message.rendered_html)
    for start in range(0, len(stale), FILL_BATCH):
        fill(stale[start : start + FILL_BATCH], current)
    return html


def fill(rendered_rows: list[tuple[Message, str]], current: int) -> None:
    """Store freshly rendered HTML: a cache fill, so it writes no other column.

    Each row is named by its id, role and text, so HTML lands only on the text it was
    made from; a row a newer renderer stored meanwhile, or a streaming one, is left
    alone. A message that is not a row (a retained transcript's) matches nothing.
    """
    rows = reduce(or_, (Q(pk=m.pk, role=m.role, text=m.text) for m, _ in rendered_rows))
    Message.objects.filter(rows).filter(
        Q(rendered_version__isnull=True) | Q(rendered_version__lt=current)
    ).exclude(status=Message.Status.STREAMING).update(
        rendered_html=Case(
            *(When(pk=message.pk, then=Value(html)) for message, html in rendered_rows),
            output_field=TextField(),
        ),
        rendered_version=current,
    )

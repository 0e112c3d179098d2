"""Search a user's own conversations: their titles and the text of their messages.

Matching is a case-insensitive substring test (`icontains`), so two characters out of a
Chinese sentence match as well as an English word: nothing depends on word boundaries.
On PostgreSQL Django writes `icontains` as `UPPER(col::text) LIKE UPPER('%…%')`, and the
`search_trigram` migration indexes exactly those expressions with pg_trgm's GIN operator
class, so a search reads the index rather than every message. SQLite runs the same two
queries as a LIKE scan and finds the same rows (its LIKE folds case for ASCII only).

Conversations come only from `Conversation.objects.for_user`, so another user's words
never match. Snippets are built from escaped text with `format_html`, the match wrapped
in `<mark>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from conversations.models import Conversation, Message, ModelChoice

__all__ = [
    "LIMIT",
    "MAX_QUERY_LENGTH",
    "MessageHit",
    "SearchResults",
    "TitleHit",
    "highlight",
    "normalise_query",
    "search",
    "snippet",
]

MAX_QUERY_LENGTH = 200
# Most hits of each kind shown; the page says when there were more.
LIMIT = 50
SNIPPET_LENGTH = 180
# Text kept before the match, so the snippet shows what led up to it.
SNIPPET_LEAD = 60


@dataclass(frozen=True)
class TitleHit:
    """A conversation whose title matched."""

    conversation: Conversation
    title: SafeString

    @property
    def url(self) -> str:
        return reverse("conversation", args=[self.conversation.pk])


@dataclass(frozen=True)
class MessageHit:
    """A message whose text matched, with a highlighted snippet around the match."""

    message: Message
    snippet: SafeString

    @property
    def conversation(self) -> Conversation:
        return self.message.conversation

    @property
    def path(self) -> str:
        """Return the conversation's URL asking it to open at this message."""
        return f"{reverse('conversation', args=[self.message.conversation_id])}?m={self.message.pk}"

    @property
    def url(self) -> str:
        return f"{self.path}#message-{self.message.pk}"


@dataclass(frozen=True)
class SearchResults:
    query: str
    titles: list[TitleHit]
    messages: list[MessageHit]
    # True when either list was cut at LIMIT.
    more: bool = False

    def __bool__(self) -> bool:
        return bool(self.titles or self.messages)


def normalise_query(query: str) -> str:
    """Return the query with runs of whitespace made single spaces, at most 200 characters."""
    return " ".join(query.split())[:MAX_QUERY_LENGTH].strip()


def search(user, query: str, *, limit: int = LIMIT) -> SearchResults:
    """Return the user's conversations and messages matching `query`, newest first.

    Two queries, one for titles and one for messages (their conversations joined in),
    archived conversations included.
    """
    query = normalise_query(query)
    if not query:
        return SearchResults(query, [], [])
    # Group conversations the user is a member of are theirs to search too.
    conversations = Conversation.objects.for_member(user)
    titles = list(
        conversations.filter(title__icontains=query)
        .only("title", "archived", "updated_at")
        .order_by("-updated_at", "-pk")[: limit + 1]
    )
    # People know models by their catalogue label; the id stays for a tooltip. A
    # subquery, not a second lookup, keeps the search at two queries.
    labels = ModelChoice.objects.filter(upstream_id=OuterRef("model_name")).values("label")
    messages = list(
        Message.objects.filter(conversation__in=conversations, text__icontains=query)
        .annotate(model_label=Subquery(labels[:1]))
        .select_related("conversation")
        .only(
            "role",
            "text",
            "model_name",
            "created_at",
            "conversation__title",
            "conversation__archived",
        )
        .order_by("-created_at", "-pk")[: limit + 1]
    )
    return SearchResults(
        query,
        [TitleHit(c, highlight(c.title, query)) for c in titles[:limit]],
        [MessageHit(m, snippet(m.text, query)) for m in messages[:limit]],
        more=len(titles) > limit or len(messages) > limit,
    )


def pattern_for(query: str) -> re.Pattern[str]:
    return re.compile(re.escape(query), re.IGNORECASE)


def highlight(text: str, query: str) -> SafeString:
    """Return `text` escaped, each case-insensitive match of `query` wrapped in <mark>."""
    position = 0
    pairs = []
    for match in pattern_for(query).finditer(text) if query else ():
        pairs.append((text[position : match.start()], match.group()))
        position = match.end()
    return format_html(
        "{}{}", format_html_join("", "{}<mark>{}</mark>", pairs), escape(text[position:])
    )


def snippet(text: str, query: str) -> SafeString:
    """Return about 180 characters of `text` around its first match, highlighted."""
    text = " ".join(text.split())
    match = pattern_for(query).search(text)
    start = max(0, match.start() - SNIPPET_LEAD) if match else 0
    end = min(len(text), max(start + SNIPPET_LENGTH, match.end() if match else 0))
    return format_html(
        "{}{}{}",
        "…" if start else "",
        highlight(text[start:end], query),
        "…" if end < len(text) else "",
    )

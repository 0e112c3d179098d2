"""Let the model look through the asking user's own earlier conversations.

Matching is a case-insensitive substring test on titles and message text, which works for
Chinese and other languages written without spaces between words. Conversations come
only from `Conversation.objects.for_user(context.user)`, so another user's words can
never reach the model, and the conversation being answered is left out. The ORM is
imported when the tool runs, so the tool registry loads without Django set up.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import Tool, ToolContext, ToolError

__all__ = ["SEARCH_CONVERSATIONS", "search_conversations"]

MAX_QUERY_LENGTH = 200
SNIPPET_LENGTH = 160
# How much text before the match a snippet keeps, so the model sees what led up to it.
SNIPPET_LEAD = 50


def search_conversations(arguments: dict[str, Any], context: ToolContext) -> str:
    """Return a JSON list of {conversation_id, title, snippet, date}, newest activity first."""
    from django.db.models import Exists, OuterRef, Q, Subquery
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from conversations.models import Conversation, Message

    query = " ".join(arguments["query"].split())
    if not query:
        raise ToolError("the query is empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise ToolError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    if context.user is None:
        return "[]"
    messages = Message.objects.filter(conversation=OuterRef("pk")).order_by("created_at", "pk")
    matching = messages.filter(text__icontains=query)
    conversations = Conversation.objects.for_user(context.user)
    if context.conversation_id is not None:
        conversations = conversations.exclude(pk=context.conversation_id)
    found = (
        conversations.filter(Q(title__icontains=query) | Exists(matching))
        # The first matching message shows where the words came up; a conversation that
        # matched by title alone shows how it began instead.
        .annotate(
            excerpt=Coalesce(
                Subquery(matching.values("text")[:1]), Subquery(messages.values("text")[:1])
            )
        )
        .order_by("-updated_at", "-pk")[: int(arguments["limit"])]
    )
    results = [
        {
            "conversation_id": conversation.pk,
            "title": str(conversation),
            "snippet": snippet(conversation.excerpt or "", query),
            "date": timezone.localdate(conversation.updated_at).isoformat(),
        }
        for conversation in found
    ]
    return json.dumps(results, ensure_ascii=False)


def snippet(text: str, query: str) -> str:
    """Return about SNIPPET_LENGTH characters of `text` around the first match of `query`."""
    text = " ".join(text.split())
    match = re.search(re.escape(query), text, re.IGNORECASE)
    start = max(0, match.start() - SNIPPET_LEAD) if match else 0
    end = min(len(text), start + SNIPPET_LENGTH)
    if match and match.end() > end:
        end = match.end()
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


SEARCH_CONVERSATIONS = Tool(
    name="search_conversations",
    private=True,
    description=(
        "Search the user's own earlier conversations (titles and message text) for a word "
        "or phrase, e.g. to recall something discussed before. The current conversation is "
        "not searched. Returns conversation id, title, a snippet and the date of last activity."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": (
                    "Text to find, matched as a case-insensitive substring, so a few "
                    f"characters of Chinese work as well as a word (at most {MAX_QUERY_LENGTH} "
                    "characters)."
                ),
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10,
                "description": "The most conversations to return.",
            },
        },
        "required": ["query", "limit"],
        "additionalProperties": False,
    },
    run=search_conversations,
    # Runs on the caller's thread: Django database connections belong to their thread.
    timeout=None,
    # A model asking for 0 or 50 results wants "a few" or "all": give it 1 or 10.
    clamped=frozenset({"limit"}),
)

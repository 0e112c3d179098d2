"""HTML for the websocket: the chat page's own partials, rendered for live updates.

The chat page and every push use the same `{% partialdef %}` blocks of
`conversations/chat.html`, so a reloaded page looks exactly like the live one. Each
function returns elements marked `hx-swap-oob`, which htmx's websocket extension swaps
into the page by id.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from conversations.models import Conversation, Message
from conversations.reads import TranscriptView
from conversations.rendering import render_markdown, render_plain

__all__ = [
    "body_html",
    "composer_error_html",
    "conversation_changed_html",
    "delta_html",
    "live_body_html",
    "message_html",
    "message_items",
    "new_messages_html",
    "toast_html",
    "transcript_html",
    "turn_accepted_html",
]

PAGE = "conversations/chat.html"


def render(partial: str, context: dict) -> str:
    return render_to_string(f"{PAGE}#{partial}", context)


def body_html(message: Message) -> str:
    """Return the rendered body of a message: plain text for people, Markdown for models."""
    if message.role == Message.Role.USER:
        return render_plain(message.text)
    return render_markdown(message.text)


def message_items(messages: list[Message]) -> list[tuple[Message, str]]:
    return [(message, body_html(message)) for message in messages]


def message_html(message: Message) -> str:
    """Return one bubble that replaces the page's copy of it."""
    return render("message", {"message": message, "body": body_html(message), "oob": True})


def new_messages_html(messages: list[Message], *, replaces: int | None = None) -> str:
    """Return bubbles to append to the transcript, removing the one they replace."""
    return render("new_messages", {"items": message_items(messages), "replaces": replaces})


def transcript_html(view: TranscriptView) -> str:
    """Return the whole transcript, replacing the page's (a resync after reconnecting)."""
    return render("transcript_oob", {"items": message_items(view.messages)})


def live_body_html(message_id: int, blocks: str, tail: str) -> str:
    """Return a streaming answer's whole body so far, replacing the page's copy."""
    return render(
        "live_body", {"message_id": message_id, "blocks": blocks, "tail": tail, "oob": True}
    )


def delta_html(message_id: int, appended: str, tail: str) -> str:
    """Return newly finished blocks to append and the open tail to replace."""
    return render("answer_delta", {"message_id": message_id, "appended": appended, "tail": tail})


def turn_accepted_html(conversation: Conversation, notices: list[str]) -> str:
    """Tell the page which conversation its message went to, and any notices."""
    return render("turn_accepted", {"conversation": conversation, "notices": notices})


def composer_error_html(text: str) -> str:
    """Show why a message was not sent; the page puts the typed text back."""
    return render("composer_error", {"error": text, "oob": True})


def toast_html(text: str) -> str:
    return render("toast", {"text": text})


def conversation_changed_html(
    conversation_id: int, conversation: Conversation | None, *, active: int | None
) -> str:
    """Move the conversation to the top of the sidebar, or remove it if it is gone."""
    return render(
        "conversation_changed",
        {"conversation_id": conversation_id, "conversation": conversation, "active_id": active},
    )

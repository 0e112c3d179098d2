"""HTML for the websocket: the chat page's own partials, rendered for live updates.

The chat page and every push use the same `{% partialdef %}` blocks of
`conversations/chat.html`, so a reloaded page looks exactly like the live one. Each
function returns elements marked `hx-swap-oob`, which htmx's websocket extension swaps
into the page by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from django.template.loader import render_to_string
from django.utils.translation import gettext

from conversations.history.reads import TranscriptView
from conversations.models import Conversation, Message, ModelChoice, preferred
from conversations.pipeline.answer import AnswerState
from conversations.rendering.citations import number_citations
from conversations.rendering.markdown import (
    is_web_url,
    relabel_copy_buttons,
    render_markdown,
    render_plain,
)

__all__ = [
    "Bubble",
    "bubble",
    "bubbles",
    "composer_error_html",
    "composer_notices_html",
    "conversation_changed_html",
    "delta_html",
    "has_code_buttons",
    "live_body_html",
    "live_extras",
    "message_html",
    "model_picker_html",
    "new_messages_html",
    "toast_html",
    "transcript_html",
    "turn_accepted_html",
]

PAGE = "conversations/chat.html"

# Rendered Markdown puts one in each code block; model text cannot (it is escaped).
CODE_BUTTON_MARK = 'class="copy-button"'


@dataclass(frozen=True)
class Extras:
    """What an answer bubble shows beside its text."""

    reasoning: str = ""
    searches: list[dict] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    live: bool = False
    answer_started: bool = True

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.searches or self.tool_calls or self.sources)

    @property
    def reasoning_html(self) -> str:
        """Summaries are Markdown (bold section titles), and model output like any other."""
        return render_markdown(self.reasoning)


@dataclass(frozen=True)
class Branches:
    """Where a message stands among its alternatives, shown as "2 / 3"."""

    position: int
    count: int
    previous_id: int | None
    next_id: int | None


@dataclass(frozen=True)
class Bubble:
    message: Message
    body: str
    extras: Extras

    @property
    def branches(self) -> Branches | None:
        siblings = getattr(self.message, "siblings", None) or []
        if len(siblings) < 2 or self.message.pk not in siblings:
            return None
        index = siblings.index(self.message.pk)
        return Branches(
            position=index + 1,
            count=len(siblings),
            previous_id=siblings[index - 1] if index > 0 else None,
            next_id=siblings[index + 1] if index + 1 < len(siblings) else None,
        )


def render(partial: str, context: dict) -> str:
    return render_to_string(f"{PAGE}#{partial}", context)


@lru_cache(maxsize=2048)
def markdown_at_rest(text: str) -> str:
    """Render a finished answer; finished text never changes, so its HTML is kept.

    Keyed by the text itself: a reloaded page or a resync renders only what it has not
    seen, and an edited answer is a new text with its own entry.
    """
    return render_markdown(text)


def bubble(message: Message) -> Bubble:
    """Return a message ready to render: its body HTML and its extras."""
    if message.role == Message.Role.USER:
        return Bubble(message, render_plain(message.text), Extras())
    text, sources = number_citations(message.text, message.citations)
    # The list links each source by its URL, outside Markdown's link filter: keep http(s).
    sources = [source for source in sources if is_web_url(source.get("url"))]
    extras = Extras(
        reasoning=message.reasoning_summary,
        searches=message.web_searches,
        tool_calls=message.tool_calls,
        sources=sources,
        live=message.is_streaming,
    )
    body = render_markdown(text) if message.is_streaming else markdown_at_rest(text)
    # The HTML is cached for every reader: label its copy buttons in this reader's language.
    return Bubble(message, label_code_buttons(body), extras)


def label_code_buttons(rendered: str) -> str:
    """Return rendered Markdown with its code copy buttons in the active language."""
    if CODE_BUTTON_MARK not in rendered:
        return rendered
    return relabel_copy_buttons(rendered, label=gettext("Copy"), aria_label=gettext("Copy code"))


def has_code_buttons(*rendered: str | None) -> bool:
    """Return whether rendered Markdown has copy buttons, the only words it adds."""
    return any(html and CODE_BUTTON_MARK in html for html in rendered)


def bubbles(messages: list[Message]) -> list[Bubble]:
    return [bubble(message) for message in messages]


def live_extras(state: AnswerState, *, answer_started: bool) -> Extras:
    return Extras(
        reasoning=state.reasoning_text,
        searches=state.searches,
        tool_calls=state.tool_calls,
        live=True,
        answer_started=answer_started,
    )


def message_html(message: Message, *, staff: bool = False) -> str:
    """Return one bubble that replaces the page's copy of it.

    `staff`: the reader is staff, who also see what the gateway said about a failure.
    """
    return render("message", {"bubble": bubble(message), "oob": True, "error_details": staff})


def new_messages_html(messages: list[Message], *, staff: bool = False) -> str:
    """Return bubbles to append to the transcript."""
    return render("new_messages", {"items": bubbles(messages), "error_details": staff})


def transcript_html(view: TranscriptView, *, staff: bool = False) -> str:
    """Return the whole transcript, replacing the page's (a resync after reconnecting)."""
    return render(
        "transcript_oob",
        {
            "items": bubbles(view.messages),
            "conversation": view.conversation,
            "view": view,
            "error_details": staff,
        },
    )


def live_body_html(message_id: int, blocks: str, tail: str, *, extras: Extras) -> str:
    """Return a streaming answer's whole body so far, replacing the page's copy."""
    blocks, tail = label_code_buttons(blocks), label_code_buttons(tail)
    return render(
        "live_snapshot",
        {"message_id": message_id, "blocks": blocks, "tail": tail, "extras": extras, "oob": True},
    )


def delta_html(
    message_id: int, appended: str, tail: str | None, *, extras: Extras | None = None
) -> str:
    """Return newly finished blocks to append, the open tail and changed extras."""
    appended = label_code_buttons(appended)
    tail = None if tail is None else label_code_buttons(tail)
    return render(
        "answer_delta",
        {"message_id": message_id, "appended": appended, "tail": tail, "extras": extras},
    )


def turn_accepted_html(
    conversation: Conversation, notices: list[str], *, sent_from: int | None
) -> str:
    """Tell the page which conversation its message went to, and any notices.

    `sent_from` is the conversation the page sent from (None for a new chat): a page
    that has moved on since ignores the answer, so it never takes over another chat.
    """
    return render(
        "turn_accepted",
        {"conversation": conversation, "notices": notices, "sent_from": sent_from or ""},
    )


def composer_error_html(text: str, *, retry: bool = False) -> str:
    """Show why a message was not sent; the page puts the typed text back.

    With `retry` (the process is shutting down) the page also sends it again once its
    socket has reconnected.
    """
    return render("composer_error", {"error": text, "oob": True, "retry": retry})


def composer_notices_html(notices: list[str]) -> str:
    """Show notices about a turn that started (a regeneration, an edit) above the composer."""
    return render("composer_error", {"notices": notices, "oob": True})


def model_picker_html(user) -> str:
    """Return the composer's model picker and options as the catalogue stands now for `user`.

    Sent when a turn was refused for a model an admin turned off, or took from the
    user's groups, while the page was open, so the picker stops offering it. Reads the
    catalogue: call off the event loop.
    """
    models = list(ModelChoice.objects.usable_by(user))
    model = preferred(models)
    context = {"models": models, "selected_model": model}
    return render("model_picker", {**context, "oob": True}) + render(
        "composer_options", {"model": model or ModelChoice(), "oob": True}
    )


def toast_html(text: str) -> str:
    return render("toast", {"text": text})


def conversation_changed_html(
    conversation_id: int, conversation: Conversation | None, *, active: int | None
) -> str:
    """Move the conversation to the top of the sidebar, or remove it if it is gone."""
    html = render(
        "conversation_changed",
        {"conversation_id": conversation_id, "conversation": conversation, "active_id": active},
    )
    if conversation is not None and conversation.pk == active:
        html += render("conversation_actions", {"conversation": conversation, "oob": True})
    return html

"""HTML for the websocket: the chat page's own partials, rendered for live updates.

The chat page and every push use the same `{% partialdef %}` blocks of
`conversations/chat.html`, so a reloaded page looks exactly like the live one. Each
function returns elements marked `hx-swap-oob`, which htmx's websocket extension swaps
into the page by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.template.loader import render_to_string
from django.urls import reverse

from conversations.groups.people import Person
from conversations.groups.presence import Here
from conversations.history.reads import MessageView, TranscriptView
from conversations.models import (
    Assistant,
    Attachment,
    Conversation,
    Message,
    ModelChoice,
    preferred,
)
from conversations.pipeline import deltas
from conversations.pipeline.answer import AnswerState
from conversations.rendering.citations import number_citations
from conversations.rendering.markdown import render_markdown
from conversations.rendering.sanitise import is_web_url
from conversations.rendering.stored import rendered

__all__ = [
    "Bubble",
    "File",
    "ImageUrl",
    "PendingTurn",
    "accepted_turn_html",
    "bubbles",
    "composer_error_html",
    "composer_notices_html",
    "conversation_changed_html",
    "delta_html",
    "live_body_html",
    "live_extras",
    "message_html",
    "model_picker_html",
    "new_messages_html",
    "owner_image_url",
    "pending_failed_html",
    "pending_turn_html",
    "presence_html",
    "toast_html",
    "transcript_html",
    "turn_accepted_html",
    "typing_html",
]

PAGE = "conversations/chat.html"


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


def branches_of(message_id: int, alternatives: Sequence[int]) -> Branches | None:
    """Return the switcher for a message with alternatives; None for one without."""
    if len(alternatives) < 2 or message_id not in alternatives:
        return None
    index = alternatives.index(message_id)
    return Branches(
        position=index + 1,
        count=len(alternatives),
        previous_id=alternatives[index - 1] if index > 0 else None,
        next_id=alternatives[index + 1] if index + 1 < len(alternatives) else None,
    )


# (attachment id, thumbnail?) -> the URL the page shows that image at.
ImageUrl = Callable[[int, bool], str]


def owner_image_url(attachment_id: int, thumbnail: bool) -> str:
    """The chat's own image URLs, which only the images' owner may open."""
    return reverse("attachment_thumbnail" if thumbnail else "attachment", args=[attachment_id])


@dataclass(frozen=True)
class Image:
    """An image a question carries, with the URLs the page links it by."""

    url: str
    thumbnail_url: str
    name: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class File:
    """A document a question carries: what its chip says, and where to download it
    (None where the page's readers may not: a share link that does not allow it)."""

    name: str
    size: int
    pages: int | None
    url: str | None
    no_text: bool


@dataclass(frozen=True)
class Bubble:
    """Everything the `message` partial shows about one message, built by `bubbles`.

    `body` is the text's sanitised HTML; `branches` the switcher between versions (None
    without alternatives); `images` the question's images at the URLs of the page
    drawing it (the owner's chat, a share link, admin review), and `files` its documents.
    """

    message: Message
    body: str
    extras: Extras
    model_label: str = ""
    branches: Branches | None = None
    images: tuple[Image, ...] = ()
    files: tuple[File, ...] = ()
    # The assistant an answer spoke as, while it exists (`reads.MessageView.assistant`).
    assistant: Assistant | None = None
    # Who wrote a question in a group conversation (`reads.MessageView.author`).
    author: Person | None = None


def render(partial: str, context: dict) -> str:
    return render_to_string(f"{PAGE}#{partial}", context)


def bubbles(
    views: Sequence[MessageView],
    *,
    image_url: ImageUrl = owner_image_url,
    downloads: bool = True,
) -> list[Bubble]:
    """Return the bubbles of messages read with what they show (`reads.MessageView`).

    Finished messages show the HTML stored with them; a streaming answer is rendered
    as it stands. Reads nothing from the database: callable on the event loop.
    `image_url` says where the drawing page serves the questions' attachments (a
    document at its full-size URL); `downloads` false shows documents by name only.
    """
    return [
        Bubble(
            message=view.message,
            body=live_body(view.message) if view.message.is_streaming else view.html,
            extras=extras_of(view.message),
            model_label=view.model_label or view.message.model_name,
            branches=branches_of(view.message.pk, view.alternatives),
            images=tuple(
                image_of(image, image_url) for image in view.images if not image.is_document
            ),
            files=tuple(
                file_of(document, image_url if downloads else None)
                for document in view.images
                if document.is_document
            ),
            assistant=view.assistant,
            author=view.author,
        )
        for view in views
    ]


def live_body(message: Message) -> str:
    """Render a streaming answer's text as it stands: its HTML is stored when it ends."""
    text, _sources = number_citations(message.text, message.citations)
    return render_markdown(text)


def extras_of(message: Message) -> Extras:
    """Return what an answer shows beside its text; a question shows nothing."""
    if message.role == Message.Role.USER:
        return Extras()
    _text, sources = number_citations(message.text, message.citations)
    return Extras(
        reasoning=message.reasoning_summary,
        searches=message.web_searches,
        tool_calls=message.tool_calls,
        # The list links each source by its URL, outside Markdown's link filter: keep http(s).
        sources=[source for source in sources if is_web_url(source.get("url"))],
        live=message.is_streaming,
    )


def image_of(image: Attachment, image_url: ImageUrl) -> Image:
    return Image(
        url=image_url(image.pk, False),
        thumbnail_url=image_url(image.pk, True),
        name=image.original_name,
        width=image.width,
        height=image.height,
    )


def file_of(document: Attachment, image_url: ImageUrl | None) -> File:
    return File(
        name=document.original_name,
        size=document.size,
        pages=document.pages,
        url=image_url(document.pk, False) if image_url else None,
        no_text=document.extraction_note == "no_text",
    )


def live_extras(state: AnswerState, *, answer_started: bool) -> Extras:
    return Extras(
        reasoning=state.reasoning_text,
        searches=state.searches,
        tool_calls=state.tool_calls,
        live=True,
        answer_started=answer_started,
    )


def message_html(view: MessageView, *, staff: bool = False) -> str:
    """Return one bubble that replaces the page's copy of it.

    `staff`: the reader is staff, who also see what the gateway said about a failure.
    """
    (drawn,) = bubbles([view])
    return render("message", {"bubble": drawn, "oob": True, "error_details": staff})


def new_messages_html(views: Sequence[MessageView], *, staff: bool = False) -> str:
    """Return bubbles to append to the transcript."""
    return render("new_messages", {"items": bubbles(views), "error_details": staff})


@dataclass(frozen=True)
class PendingTurn:
    """A turn as the sending tab shows it before the database has it, from its frame alone.

    `key` names its two bubbles (`<key>-question`, `<key>-answer`) until the saved ones
    replace them; `sent_from` is the conversation the page sent from (None for a new
    chat), so a page that has moved on since ignores them.
    """

    key: str
    text: str
    sent_from: int | None

    @property
    def body(self) -> str:
        """The question's HTML exactly as it will be stored; "" for no text (images only)."""
        text = self.text.strip()  # as the save stores it
        return rendered(role=Message.Role.USER, text=text) if text else ""

    @property
    def question_id(self) -> str:
        return f"{self.key}-question"

    @property
    def answer_id(self) -> str:
        return f"{self.key}-answer"


def pending_turn_html(pending: PendingTurn) -> str:
    """Append the question and an answer waiting for it, before anything is saved.

    Reads nothing and renders one small partial, so the sending tab sees its turn at
    once however long the save waits for a database thread.
    """
    return render("pending_turn", {"pending": pending})


def accepted_turn_html(
    views: Sequence[MessageView], pending: PendingTurn, *, staff: bool = False
) -> str:
    """Return the saved question and answer, each replacing its bubble drawn from the frame.

    They are the bubbles any other tab draws (`new_messages_html`), in the same place. A
    group member's message the model does not answer comes alone: the waiting answer
    drawn for it goes.
    """
    saved = bubbles(views)
    swaps = list(zip((pending.question_id, pending.answer_id), saved, strict=False))
    return render(
        "accepted_turn",
        {
            "swaps": swaps,
            "drop": pending.answer_id if len(saved) == 1 else "",
            "error_details": staff,
        },
    )


def pending_failed_html(pending: PendingTurn, error: str) -> str:
    """Turn the drawn question into an error that keeps its text, and drop its answer."""
    return render("pending_failed", {"pending": pending, "error": error})


def transcript_html(view: TranscriptView, *, staff: bool = False) -> str:
    """Return the whole transcript, replacing the page's (a resync after reconnecting)."""
    return render(
        "transcript_oob",
        {
            "items": bubbles(view.shown),
            "conversation": view.conversation,
            "view": view,
            "error_details": staff,
        },
    )


def live_body_html(message_id: int, blocks: str, tail: str, *, extras: Extras) -> str:
    """Return a streaming answer's whole body so far, replacing the page's copy."""
    return render(
        "live_snapshot",
        {"message_id": message_id, "blocks": blocks, "tail": tail, "extras": extras, "oob": True},
    )


def delta_html(
    message_id: int, appended: str, tail: str | None, *, extras: Extras | None = None
) -> str:
    """Return newly finished blocks to append, the open tail and changed extras.

    Built by `deltas` without the template engine (the `answer_delta` partial's twin,
    sent every flush); only changed extras, which have words, go through their partial.
    """
    shown = ""
    if extras is not None:
        shown = render("answer_extras", {"message_id": message_id, "extras": extras, "oob": True})
    return deltas.delta_html(message_id, appended, tail, extras_html=shown)


def turn_accepted_html(
    conversation: Conversation, notices: list[str], *, sent_from: int | None, viewer_id: int
) -> str:
    """Tell the page which conversation its message went to, and any notices.

    `sent_from` is the conversation the page sent from (None for a new chat): a page
    that has moved on since ignores the answer, so it never takes over another chat.
    """
    context = {"conversation": conversation, "notices": notices, "sent_from": sent_from or ""}
    # The sender sees the header's buttons of their place in it: owner, or member.
    return render("turn_accepted", {**context, "viewer_id": viewer_id})


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


def presence_html(people: Sequence[Here], *, conversation_id: int) -> str:
    """Return the header's presence bar: who has the conversation open now, each once.

    Marked with the conversation, so a page that has moved on to another drops it.
    """
    context = {"present": people, "presence_for": conversation_id, "oob": True}
    return render("presence_bar", context)


def typing_html(names: Sequence[str], *, conversation_id: int) -> str:
    """Return the line under the transcript saying who is typing ("" inside: nobody)."""
    context = {"typing": names, "presence_for": conversation_id, "oob": True}
    return render("typing_line", context)


def removed_html() -> str:
    """Replace a conversation the user is no longer a member of with a notice."""
    return render("removed_from_conversation", {})


def toast_html(text: str) -> str:
    return render("toast", {"text": text})


def conversation_changed_html(
    conversation_id: int,
    conversation: Conversation | None,
    *,
    active: int | None,
    viewer_id: int,
    people: Sequence[Person] = (),
) -> str:
    """Move the conversation to the top of the sidebar (of `viewer_id`'s: their own, or
    "Shared with me" marked with its `people`), or remove it if it is gone; on the page
    showing it, redraw the header's buttons and the group's people."""
    shared = conversation is not None and conversation.owner_id != viewer_id
    context = {
        "conversation_id": conversation_id,
        "conversation": conversation,
        "active_id": active,
        "viewer_id": viewer_id,
        "marks": people if shared else (),
    }
    html = render("conversation_changed", context)
    if conversation is not None and conversation.pk == active:
        context = {"conversation": conversation, "oob": True, "viewer_id": viewer_id}
        html += render("conversation_actions", context)
        html += render("group_bar", {**context, "group_members": people})
    return html

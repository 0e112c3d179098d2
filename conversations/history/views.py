"""Chat pages. Views parse, authorise and render; the work lives in plain modules."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseLocation

from conversations.assistants.library import usable_assistant, usable_assistants
from conversations.groups import membership
from conversations.history import reads
from conversations.models import Conversation, ModelChoice, preferred
from conversations.params import form_text, query_id, query_text
from conversations.pipeline import broadcast, consumers, fragments

PAGE = "conversations/chat.html"
# How many assistants a new chat offers to start from; the Assistants page has them all.
ASSISTANT_PICKS = 6


def chat_context(request, view: reads.TranscriptView | None, assistant=None) -> dict:
    """What the conversation panel shows: `view`'s conversation, or a new chat (with
    `assistant`, when one was picked for it)."""
    conversation = view.conversation if view else None
    models = reads.model_choices(request.user)
    # A conversation on a model the user can no longer use shows their default; the
    # next turn then says the conversation continues there (admission.choose_model).
    selected = next((m for m in models if conversation and m.pk == conversation.model_id), None)
    if conversation is None and assistant is not None:
        selected = next((m for m in models if m.pk == assistant.model_id), None)
    return {
        **assistant_context(request.user, conversation, assistant),
        "conversation": conversation,
        "items": fragments.bubbles(view.shown) if view else [],
        "view": view,
        "models": models,
        "selected_model": selected or preferred(models),
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "max_instructions_chars": settings.CHAT_MAX_INSTRUCTIONS_CHARS,
        "active_id": conversation.pk if conversation else None,
        "viewer_id": request.user.pk,
        "group_members": view.members if view else [],
    }


def assistant_context(user, conversation, assistant) -> dict:
    """The assistant the panel shows and presets, whether the user lost it, and, on a
    plain new chat, the assistants to start from instead."""
    if conversation is not None:
        assistant = conversation.assistant
        if assistant is not None and usable_assistant(user, assistant.pk) is None:
            return {"assistant": assistant, "assistant_lost": True}
    elif assistant is None:
        return {"assistant_picks": list(usable_assistants(user)[:ASSISTANT_PICKS])}
    if assistant is None:
        return {}
    return {
        "assistant": assistant,
        "options_locked": assistant.lock_options,
        "preset_effort": assistant.reasoning_effort,
        "preset_web_search": assistant.web_search,
    }


def page_context(request) -> dict:
    """What the whole page has around its panel.

    The sidebar, and the socket's close codes after which the page goes to the sign-in
    page instead of reconnecting (chat.js reads them from #app).
    """
    return {
        "page": reads.sidebar(request.user),
        "sign_in_close_codes": [consumers.CLOSE_UNAUTHENTICATED, consumers.CLOSE_ACCESS_REVOKED],
    }


def render_chat(request, view: reads.TranscriptView | None, assistant=None):
    context = chat_context(request, view, assistant)
    if request.htmx and request.htmx.target == "chat-main":
        return render(request, f"{PAGE}#conversation_panel", context)
    return render(request, PAGE, {**context, **page_context(request)})


def render_panel(request, partial: str, context: dict):
    """Render a panel of the chat page: alone for htmx, inside the whole page otherwise."""
    if request.htmx and request.htmx.target == "chat-main":
        return render(request, f"{PAGE}#{partial}", context)
    page = chat_context(request, None)
    page.update(context, panel=partial, **page_context(request))
    return render(request, PAGE, page)


@require_GET
def chat(request):
    """A new, empty chat: the conversation is created when the first message is sent,
    bound to the assistant picked for it (`?assistant=`) if the user may use it."""
    assistant = None
    if "assistant" in request.GET:
        assistant = usable_assistant(request.user, request.GET["assistant"])
        if assistant is None:
            raise Http404("No such assistant.")
    return render_chat(request, None, assistant)


@require_GET
def conversation(request, pk: int):
    view = reads.transcript(request.user, pk, around=query_id(request, "m"))
    if view is None:
        raise Http404("No such conversation.")
    if view.conversation.is_group:
        # A member's first visit goes in the group's audit log.
        membership.note_joined(view.conversation, request.user)
    return render_chat(request, view)


@require_GET
def earlier_messages(request, pk: int):
    """The page of messages before the first one shown, replacing the button that asked."""
    view = reads.transcript(request.user, pk, before=query_id(request, "before"))
    if view is None:
        raise Http404("No such conversation.")
    context = {"items": fragments.bubbles(view.shown), "conversation": view.conversation}
    return render(request, f"{PAGE}#earlier_messages", {**context, "view": view})


@require_GET
def composer_options(request):
    """The composer's per-model choices (effort, thinking, web search) for the picked model."""
    model_id = query_id(request, "model")
    usable = ModelChoice.objects.usable_by(request.user)
    model = usable.filter(pk=model_id).first() if model_id else None
    return render(request, f"{PAGE}#composer_options", {"model": model or ModelChoice()})


@require_GET
def sidebar(request):
    """The next page of the sidebar, loaded when its end scrolls into view."""
    page = reads.sidebar(
        request.user,
        cursor=query_text(request, "cursor"),
        continues_group=query_text(request, "group"),
    )
    return render(
        request, f"{PAGE}#sidebar_page", {"page": page, "continues_page": True, "active_id": None}
    )


@require_GET
def archive(request):
    return render_panel(request, "archive_panel", {"conversations": reads.archived(request.user)})


@require_POST
def delete_archived(request):
    """Delete every archived conversation of the user (the page asked to confirm); the
    members of archived groups lose them at once, as with one deletion."""
    archived = Conversation.objects.for_user(request.user).archived()
    groups = {
        pk: membership.member_ids(pk)
        for pk in archived.filter(is_group=True).values_list("pk", flat=True)
    }
    archived.delete()
    for conversation_id, members in groups.items():
        changed(request, conversation_id, members=members)
        for user_id in members:
            async_to_sync(broadcast.removed_from_conversation)(user_id, conversation_id)
    return render(request, f"{PAGE}#archive_panel", {"conversations": []})


def owned(request, pk: int) -> Conversation:
    """The user's conversation `pk`; another user's, or none, is a 404."""
    return get_object_or_404(Conversation.objects.for_user(request.user), pk=pk)


def changed(request, conversation_id: int, *, members: list[int] | None = None) -> None:
    """Every tab's socket (this one's too) redraws the sidebar and the header.

    The answer itself then swaps nothing: the socket's redraw replaces the header's
    buttons before it arrives, and htmx would swap it relative to the detached button
    that asked.
    """
    if members is None:
        members = membership.member_ids(conversation_id)
    # A group's members' sidebars (and open headers) follow the owner's changes.
    async_to_sync(broadcast.conversation_changed)(request.user.pk, conversation_id, others=members)


@require_POST
def pin_conversation(request, pk: int):
    conversation = owned(request, pk)
    conversation.toggle_pinned()
    changed(request, conversation.pk)
    return HttpResponse()


@require_POST
def archive_conversation(request, pk: int):
    conversation = owned(request, pk)
    conversation.toggle_archived()
    changed(request, conversation.pk)
    return HttpResponse()


@require_POST
def rename_conversation(request, pk: int):
    """Save the title typed in the header's rename form."""
    conversation = owned(request, pk)
    title = " ".join(form_text(request, "title").split())
    if not title:
        return HttpResponse(status=400)
    conversation.rename(title)
    changed(request, conversation.pk)
    return HttpResponse()


@require_POST
def delete_conversation(request, pk: int):
    """Delete the conversation and send the page to a new chat; a group's members' tabs
    let go of it too."""
    conversation = owned(request, pk)
    members = membership.member_ids(pk)
    conversation.delete()
    changed(request, pk, members=members)
    for user_id in members:
        async_to_sync(broadcast.removed_from_conversation)(user_id, pk)
    return HttpResponseLocation(reverse("chat"), target="#chat-main")


@login_not_required
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's)."""
    return redirect(static("chatweb/favicon.ico"))

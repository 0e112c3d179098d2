"""Share pages: the owner's share dialog and list of links, and the shared transcript.

The transcript, its images and "continue" resolve the link through `with_link`, which
turns an unusable link into the same 404 page whatever the reason, so a token tells a
stranger nothing. Public links skip the site's login requirement (`login_not_required`)
and say so to no search engine (`noindex`).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversations.attachments.serving import image_response
from conversations.history import reads
from conversations.models import ShareLink, SharingPolicy, TranscriptAccess
from conversations.params import form_text, is_share_token
from conversations.pipeline.fragments import ImageUrl
from conversations.sharing import links as sharing
from conversations.sharing import transcripts
from conversations.sharing.audit import record_access
from conversations.sharing.continuing import continue_in_new_chat
from conversations.sharing.pages import NOINDEX, render_transcript

PAGE = "conversations/shares.html"


# --- The owner's share dialog and links ------------------------------------------------


def dialog_context(conversation, **extra) -> dict:
    return {
        "conversation": conversation,
        "links": sharing.conversation_links(conversation),
        "mode": SharingPolicy.load().mode,
        "expiry_choices": [(value, label) for value, (label, _) in sharing.EXPIRY_CHOICES.items()],
        **extra,
    }


@require_http_methods(["GET", "POST"])
def share_conversation(request, pk: int):
    """GET: the share dialog. POST: create a link and show the dialog's panel again.

    The owner's alone: a group's members read the conversation but do not share it."""
    conversation = reads.owned_conversation(request.user, pk)
    if conversation is None:
        raise Http404("No such conversation.")
    if request.method == "GET":
        return render(request, f"{PAGE}#share_dialog", dialog_context(conversation))
    try:
        created = sharing.create_link(
            conversation=conversation,
            visibility=form_text(request, "visibility"),
            expires=form_text(request, "expires"),
            allow_downloads=request.POST.get("allow_downloads") == "on",
        )
    except sharing.SharingError as error:
        context = dialog_context(conversation, error=error.user_message)
    else:
        context = dialog_context(conversation, created=created)
    return render(request, f"{PAGE}#share_panel", context)


@require_GET
def shares(request):
    """Every link the user made, with its state, to copy, update or revoke."""
    links = (
        ShareLink.objects.for_owner(request.user)
        .select_related("conversation")
        .order_by("-created_at", "-pk")
    )
    return render(
        request, PAGE, {"links": links, "mode": SharingPolicy.load().mode, "show_title": True}
    )


def link_response(request, link: ShareLink, error: str = ""):
    """Redraw the link's row for htmx; send a plain form back to the list."""
    if not request.htmx:
        return redirect("shares")
    context = {"link": link, "error": error, "show_title": request.POST.get("context") == "list"}
    return render(request, f"{PAGE}#share_link", context)


@require_POST
def revoke_share(request, pk: int):
    link = sharing.owned_link(request.user, pk)
    if link is None:
        raise Http404("No such link.")
    return link_response(request, sharing.revoke(link, by=request.user))


@require_POST
def update_share(request, pk: int):
    link = sharing.owned_link(request.user, pk)
    if link is None:
        raise Http404("No such link.")
    try:
        sharing.update_snapshot(link)
    except sharing.SharingError as error:
        return link_response(request, link, error.user_message)
    return link_response(request, link)


# --- The shared transcript -------------------------------------------------------------


def unavailable(request) -> HttpResponse:
    context = {
        "heading": gettext("This shared conversation is not available"),
        "message": gettext(
            "The link may have been revoked or may have expired, or sharing may be turned "
            "off. Ask the person who shared it for a new link."
        ),
    }
    return render(request, "404.html", context, status=404)


def with_link(view):
    """Resolve the URL's token into a link the visitor may open, or answer for it."""

    @wraps(view)
    def wrapped(request, token: str, **kwargs):
        try:
            if not is_share_token(token):
                raise sharing.LinkUnavailable
            link = sharing.open_link(token, request.user)
        except sharing.LinkUnavailable:
            response = unavailable(request)
        except sharing.SignInRequired:
            response = redirect_to_login(reverse("shared_transcript", args=[token]))
        else:
            response = view(request, link, **kwargs)
        response["X-Robots-Tag"] = NOINDEX
        return response

    return wrapped


def link_image_url(link: ShareLink) -> ImageUrl:
    def url(pk: int, thumbnail: bool) -> str:
        name = "shared_image_thumbnail" if thumbnail else "shared_image"
        return reverse(name, args=[link.token, pk])

    return url


@login_not_required
@never_cache
@require_GET
@with_link
def shared_transcript(request, link: ShareLink):
    record_access(request, TranscriptAccess.Via.LINK, link=link)
    return render_transcript(
        request,
        transcripts.shared_transcript(link),
        image_url=link_image_url(link),
        downloads=link.allow_downloads,
        link=link,
    )


@require_POST
@with_link
def continue_shared(request, link: ShareLink):
    """Copy the snapshot into a new conversation of the reader's and open it."""
    conversation = continue_in_new_chat(link=link, user=request.user)
    record_access(request, TranscriptAccess.Via.CONTINUE, link=link)
    return redirect("conversation", conversation.pk)


@login_not_required
@require_GET
@with_link
def shared_image(request, link: ShareLink, pk: int, thumbnail: bool = False):
    found = sharing.shared_image(link, request.user, pk)
    if found is None:
        raise Http404("No such image.")
    return image_response(found, thumbnail=thumbnail)

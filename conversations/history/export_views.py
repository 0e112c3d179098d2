"""Search and export: finding things in one's own conversations and taking them away.

Everything is fetched through `Conversation.objects.for_user`, so another user's
conversation is a 404 and never matches a search.
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from conversations.history import exports
from conversations.history import search as finding
from conversations.models import Conversation
from conversations.params import query_text

__all__ = ["export_account", "export_json", "export_markdown", "export_zip", "search"]

PAGE = "conversations/search.html"


@require_GET
def search(request):
    """The search page; an htmx request gets only its results, for the chat's main panel."""
    context = {
        "results": finding.search(request.user, query_text(request, "q")),
        "limit": finding.LIMIT,
        "max_query_length": finding.MAX_QUERY_LENGTH,
        # Inside the chat page results open in place; on the plain page they are links.
        "in_chat": bool(request.htmx) and request.htmx.target == "chat-main",
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{PAGE}#results", context)
    return render(request, PAGE, context)


def download_headers(response: HttpResponse, disposition: str) -> HttpResponse:
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def owned_bundle(user, pk: int) -> exports.Bundle:
    found = exports.bundles(user, Conversation.objects.for_user(user).filter(pk=pk))
    if not found:
        raise Http404("No such conversation.")
    return found[0]


def too_large(error: exports.ExportTooLarge) -> HttpResponse:
    return HttpResponse(f"{error}\n", status=413, content_type="text/plain; charset=utf-8")


@require_GET
def export_markdown(request, pk: int):
    owned = Conversation.objects.for_user(request.user).select_related("model")
    found = get_object_or_404(owned, pk=pk)
    response = HttpResponse(
        exports.conversation_markdown(found), content_type="text/markdown; charset=utf-8"
    )
    return download_headers(response, exports.content_disposition(found.title, f"-{pk}.md"))


@require_GET
def export_json(request, pk: int):
    bundle = owned_bundle(request.user, pk)
    response = HttpResponse(
        exports.conversation_json(bundle), content_type="application/json; charset=utf-8"
    )
    return download_headers(
        response, exports.content_disposition(bundle.conversation.title, f"-{pk}.json")
    )


@require_GET
def export_zip(request, pk: int):
    bundle = owned_bundle(request.user, pk)
    try:
        archive = exports.conversation_zip(bundle)
    except exports.ExportTooLarge as error:
        return too_large(error)
    response = FileResponse(archive, content_type="application/zip")
    return download_headers(
        response, exports.content_disposition(bundle.conversation.title, f"-{pk}.zip")
    )


@require_GET
def export_account(request):
    """All the user's conversations as one zip."""
    try:
        archive = exports.account_zip(request.user)
    except exports.ExportTooLarge as error:
        return too_large(error)
    response = FileResponse(archive, content_type="application/zip")
    day = timezone.localdate().isoformat()
    return download_headers(response, f'attachment; filename="chatweb-export-{day}.zip"')

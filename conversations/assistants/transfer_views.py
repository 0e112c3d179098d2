"""Taking an assistant to another chatweb: export as a JSON file, import from one.

Export needs the right to edit the assistant (its instructions are in the file); anyone
else gets the same 404 as for an assistant that does not exist. Import always makes a
new private assistant of the importer's (`portable.import_all`).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from conversations.assistants import portable
from conversations.assistants.library import editable_assistants
from conversations.history.exports import content_disposition

__all__ = ["MAX_IMPORT_BYTES", "export_assistant", "import_assistant", "json_download"]

PAGE = "conversations/assistant_import.html"
# An assistant's JSON is a few KB (its icon up to `portable.LARGEST_ICON_BYTES`).
MAX_IMPORT_BYTES = 1024 * 1024


def json_download(data, name: str, suffix: str = ".assistant.json") -> HttpResponse:
    """Return `data` as a JSON file the browser saves as `name` (slugged) + `suffix`."""
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = content_disposition(name, suffix)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def export_assistant(request, pk: int):
    assistant = editable_assistants(request.user).filter(pk=pk).first()
    if assistant is None:
        raise Http404("No such assistant.")
    return json_download(portable.to_json(assistant), assistant.name)


@require_http_methods(["GET", "POST"])
def import_assistant(request):
    """GET: the import form. POST: import the uploaded or pasted JSON and open the result."""
    if request.method == "GET":
        return render(request, PAGE, {"limit_mb": MAX_IMPORT_BYTES // (1024 * 1024)})
    pasted = request.POST.get("json", "")
    try:
        imported = portable.import_all(portable.read_json(sent_json(request)), request.user)
    except ValidationError as error:
        context = {
            "errors": error.messages,
            "pasted": pasted if len(pasted) <= MAX_IMPORT_BYTES else "",
            "limit_mb": MAX_IMPORT_BYTES // (1024 * 1024),
        }
        return render(request, PAGE, context, status=400)
    names = ", ".join(item.assistant.name for item in imported)
    messages.success(
        request,
        ngettext(
            "Imported %(names)s as your own private assistant.",
            "Imported %(names)s as your own private assistants.",
            len(imported),
        )
        % {"names": names},
    )
    for item in imported:
        for warning in item.warnings:
            messages.warning(request, f"{item.assistant.name}: {warning}")
    return redirect("assistant_edit", imported[0].assistant.pk)


def sent_json(request) -> bytes | str:
    """Return the uploaded file's bytes, else the pasted text; refuse either past 1 MB."""
    upload = request.FILES.get("file")
    too_large = ValidationError(
        _("That is larger than %(limit)d MB; an assistant's JSON is far smaller.")
        % {"limit": MAX_IMPORT_BYTES // (1024 * 1024)},
        code="too_large",
    )
    if upload is not None:
        if upload.size > MAX_IMPORT_BYTES:
            raise too_large
        return upload.read()
    pasted = request.POST.get("json", "")
    if len(pasted.encode()) > MAX_IMPORT_BYTES:
        raise too_large
    return pasted

"""Attachment endpoints: upload and remove from the composer, serve files privately.

Every attachment is served through `attachments.viewable`, and anything the user may
not see is a 404, so an id tells a stranger nothing about whether it exists.

The views are synchronous on purpose: uploads decode images and wait for a worker
process to read a document, and Django runs a synchronous view in a thread, so neither
(bounded by `images.DECODES` and `extraction.SLOTS`) ever blocks the event loop that
streams answers.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from conversations.attachments import images as attachments
from conversations.attachments import uploads
from conversations.attachments.serving import attachment_response

PAGE = "conversations/chat.html"


# The CSRF check reads the form, which parses the whole multipart body into a temporary
# file; a body too large to take is refused before that, then the check runs as usual.
@csrf_exempt
@require_POST
def upload_attachment(request):
    """Store one image or document from the composer and answer with its preview chip."""
    if uploads.request_too_large(request.META.get("CONTENT_LENGTH")):
        return JsonResponse({"error": gettext("This file is too large to upload.")}, status=413)
    return checked_upload(request)


@csrf_protect
def checked_upload(request):
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return JsonResponse({"error": gettext("Choose a file to attach.")}, status=400)
    try:
        attachment = uploads.store_upload(user=request.user, uploaded_file=uploaded)
    except attachments.UploadRateLimited as error:
        response = JsonResponse({"error": error.user_message}, status=429)
        response["Retry-After"] = str(error.retry_after)
        return response
    except attachments.AttachmentError as error:
        return JsonResponse({"error": error.user_message}, status=400)
    return render(request, f"{PAGE}#attachment_preview", {"attachment": attachment})


@require_GET
def attachment(request, pk: int):
    found = attachments.viewable(request.user, pk)
    if found is None:
        raise Http404("No such attachment.")
    return attachment_response(found)


@require_GET
def attachment_thumbnail(request, pk: int):
    found = attachments.viewable(request.user, pk)
    if found is None:
        raise Http404("No such attachment.")
    return attachment_response(found, thumbnail=True)


@require_POST
def delete_attachment(request, pk: int):
    """Remove an image or a document from the composer before it is sent."""
    if not attachments.discard(user=request.user, attachment_id=pk):
        raise Http404("No such attachment.")
    return HttpResponse(status=204)

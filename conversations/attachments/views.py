"""Attachment endpoints: upload and remove from the composer, serve images privately.

Every image is served through `attachments.viewable`, and anything the user may not see
is a 404, so an id tells a stranger nothing about whether it exists.

The views are synchronous on purpose: uploads and thumbnails decode images, and Django
runs a synchronous view in a thread, so a decode (bounded by `attachments.DECODES`)
never blocks the event loop that streams answers.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from conversations.attachments import images as attachments
from conversations.attachments.serving import image_response

PAGE = "conversations/chat.html"


@require_POST
def upload_attachment(request):
    """Store one image from the composer and answer with its preview card."""
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return JsonResponse({"error": gettext("Choose an image to attach.")}, status=400)
    try:
        attachment = attachments.store_upload(user=request.user, uploaded_file=uploaded)
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
        raise Http404("No such image.")
    return image_response(found)


@require_GET
def attachment_thumbnail(request, pk: int):
    found = attachments.viewable(request.user, pk)
    if found is None:
        raise Http404("No such image.")
    return image_response(found, thumbnail=True)


@require_POST
def delete_attachment(request, pk: int):
    """Remove an image from the composer before it is sent."""
    if not attachments.discard(user=request.user, attachment_id=pk):
        raise Http404("No such image.")
    return HttpResponse(status=204)

"""The read-only transcript page, for the share views and the admin's review alike.

A share link, admin review and a retained transcript all show a `Transcript` on one
page, each serving the images at its own URLs (or showing none). The messages are drawn
with the chat's own partial, so a transcript looks exactly like the chat it came from.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

from conversations.pipeline import fragments
from conversations.sharing.transcripts import Transcript

__all__ = ["NOINDEX", "render_transcript"]

TRANSCRIPT = "conversations/transcript.html"
# Transcripts are private reading, whoever may open them: no search engine lists one.
NOINDEX = "noindex, nofollow"


def rendered_messages(
    transcript: Transcript,
    image_url: fragments.ImageUrl,
    *,
    error_details: bool,
    downloads: bool = False,
) -> list[str]:
    """Render each message with the chat's own partial, so it looks as it does there.

    `image_url` points the images at a route with this page's own permission check;
    `downloads` links the documents there too (else they are named only).
    `error_details` adds what the gateway said beside a failed answer: only for the
    admin's review, never for a shared link. Assistants show their emoji or initial,
    not their uploaded icon, which the page's readers may not be allowed to fetch.
    """
    context = {"error_details": error_details, "plain_icons": True}
    return [
        render_to_string(f"{fragments.PAGE}#message", {**context, "bubble": bubble})
        for bubble in fragments.bubbles(
            transcript.messages, image_url=image_url, downloads=downloads
        )
    ]


def render_transcript(
    request,
    transcript: Transcript,
    *,
    image_url: fragments.ImageUrl | None,
    error_details: bool = False,
    downloads: bool = False,
    **context,
) -> HttpResponse:
    """Render the read-only transcript page (shared links and admin review alike).

    `image_url` is None for a transcript without images (a retained copy's were
    deleted with the account), which then never links to the owner's own URLs.
    `downloads`: the readers may download attached documents (the link allows it).
    """
    rendered = rendered_messages(
        transcript,
        image_url or fragments.owner_image_url,
        error_details=error_details,
        downloads=downloads and image_url is not None,
    )
    context = {
        "transcript": transcript,
        # Each message with the label of its version, where it has alternatives.
        "items": [
            (html, transcript.versions.get(view.message.pk))
            for view, html in zip(transcript.messages, rendered, strict=True)
        ],
        **context,
    }
    response = render(request, TRANSCRIPT, context)
    response["X-Robots-Tag"] = NOINDEX
    return response

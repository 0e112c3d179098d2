"""Template tags for the composer's attachments."""

from __future__ import annotations

from django import template

from conversations.attachments import uploads

register = template.Library()


@register.simple_tag
def upload_limits() -> dict:
    """Return the limits the composer checks before uploading a file (its data attributes):
    from settings, so no view has to pass them to every page with a composer."""
    return uploads.browser_limits()

"""Template filters for text stored in English and shown in the reader's language."""

from __future__ import annotations

from django import template
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy

from conversations.rendering.errortext import error_text as translate_error
from conversations.rendering.notes import note_texts as translate_notes

register = template.Library()


@register.filter
def error_text(text: str) -> str:
    """Return a message's stored error in the active language."""
    return translate_error(text)


@register.filter
def note_texts(notes: list[dict]) -> list[str]:
    """Return an answer's notes (how it was made) as sentences in the active language."""
    return translate_notes(notes)


# The reasoning efforts models accept (ModelChoice.reasoning_efforts is free text: any
# other word is shown as it is).
EFFORTS = {
    "none": gettext_lazy("none"),
    "minimal": gettext_lazy("minimal"),
    "low": gettext_lazy("low"),
    "medium": gettext_lazy("medium"),
    "high": gettext_lazy("high"),
    "xhigh": gettext_lazy("xhigh"),
}


@register.filter
def effort_label(effort: str) -> str:
    """Return a reasoning effort's name in the active language, keeping its capital."""
    name = EFFORTS.get(effort.lower())
    if name is None:
        return effort
    return capfirst(str(name)) if effort[:1].isupper() else str(name)

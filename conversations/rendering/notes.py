"""What an answer's bubble says about how it was made, in the reader's language.

An answer stores its notes as codes with their numbers (`Message.notes`), because the
generation cannot know who will read it; this module turns each into a sentence when
the bubble is rendered. A code it does not know (from a newer version) is left out.
"""

from __future__ import annotations

from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy, ngettext

__all__ = ["note_texts"]

# The request fields the app can leave out, as a user would call them.
PARAM_NAMES = {
    "reasoning": gettext_lazy("reasoning effort"),
    "reasoning.summary": gettext_lazy("a reasoning summary"),
    "include": gettext_lazy("carried-over reasoning"),
    "stream_options": gettext_lazy("stream options"),
    "store": gettext_lazy("the storage setting"),
    "tools": gettext_lazy("tools"),
    "tools.web_search": gettext_lazy("web search"),
    "max_output_tokens": gettext_lazy("an answer length limit"),
    "instructions": gettext_lazy("separate instructions"),
}


def note_texts(notes: list[dict] | None) -> list[str]:
    """Return the sentences for an answer's notes, in order."""
    texts = []
    for note in notes or ():
        text = note_text(note)
        if text:
            texts.append(text)
    return texts


def note_text(note: dict) -> str:
    code = note.get("code") if isinstance(note, dict) else None
    if code == "without_param":
        name = PARAM_NAMES.get(note.get("param"))
        if name is None:
            return ""
        return gettext("Answered without %(option)s: this model does not accept it.") % {
            "option": name
        }
    if code == "turns_left_out":
        count = int(note.get("count") or 0)
        return ngettext(
            "%(count)d earlier turn was left out to fit the model's context window.",
            "%(count)d earlier turns were left out to fit the model's context window.",
            count,
        ) % {"count": count}
    if code == "resent_with_history":
        return gettext(
            "The model service did not remember this conversation, so this answer was "
            "written again with the whole conversation sent."
        )
    if code == "no_web_search":
        return gettext("Web search was on, but the model service ran no search for this answer.")
    if code == "file_text_cut":
        return file_text_cut(note)
    if code == "files_as_text":
        return gettext(
            "The model service does not accept files for this model, so the text of the "
            "attached PDFs was sent instead."
        )
    return ""


def file_text_cut(note: dict) -> str:
    """Return the sentence for a document sent as text and cut to fit the model."""
    count = int(note.get("count") or 0)
    values = {
        "name": str(note.get("name") or ""),
        "count": number_format(count, force_grouping=True),
        "total": number_format(int(note.get("total") or 0), force_grouping=True),
    }
    if note.get("unit") == "characters":
        text = ngettext(
            "%(name)s was too long for the model: its last %(count)s character of "
            "%(total)s was left out.",
            "%(name)s was too long for the model: its last %(count)s characters of "
            "%(total)s were left out.",
            count,
        )
    else:
        text = ngettext(
            "%(name)s was too long for the model: its last %(count)s line of %(total)s "
            "was left out.",
            "%(name)s was too long for the model: its last %(count)s lines of %(total)s "
            "were left out.",
            count,
        )
    return text % values

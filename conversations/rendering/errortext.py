"""Show the error saved on a message in the reader's language.

Messages keep their error in English (the gateway package is Django-free, and a stored
row cannot know who will read it), so the text is translated when it is displayed: the
fixed sentences are marked here for the catalogue, and the few with a number or an option
name in them are matched.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_noop, ngettext

__all__ = ["error_text"]

# Every fixed sentence a message may store as its error (conversations/gateway/errors.py,
# answer.py, generation.py, runs.py, endings.py), so makemessages puts them in the catalogue.
STORED_ERRORS = (
    gettext_noop("The model service had a problem. Please try again."),
    gettext_noop(
        "The model service rejected this app's credentials. Please tell an administrator."
    ),
    gettext_noop("The model service is busy right now. Please try again in a moment."),
    gettext_noop("The model service's usage quota is used up. Please tell an administrator."),
    gettext_noop("The model service could not accept this request."),
    gettext_noop("The model service no longer remembers the earlier part of this conversation."),
    gettext_noop("This model is not available on the model service."),  # older answers
    gettext_noop(
        "This model is not known to the model service. Pick another model or ask an "
        "administrator to check the catalogue."
    ),
    gettext_noop(
        "This model does not accept one of the options sent. "
        "Pick another model or ask an administrator."
    ),
    gettext_noop(
        "This conversation is too long for the model. Start a new conversation or pick "
        "another model."
    ),
    gettext_noop("The model service refused this request because of its content policy."),
    gettext_noop("The model service does not publish a list of its models."),
    gettext_noop("The model service sent a tool call the app cannot answer (no call id)."),
    gettext_noop("The model service could not find that response."),
    gettext_noop("The model service is unavailable right now. Please try again shortly."),
    gettext_noop("The model service took too long to answer. Please try again."),
    gettext_noop("The answer was cut off because the connection to the model service broke."),
    gettext_noop("The model failed while answering. Please try again."),
    gettext_noop("The answer was cut off because it reached the length limit."),
    gettext_noop("The answer was cut off by the model service's content filter."),
    gettext_noop("The answer was cut off."),
    gettext_noop("Stopped."),
    gettext_noop("Something went wrong while generating this answer."),
    gettext_noop("The server restarted while this answer was being written."),
    gettext_noop(
        "Stopped: too little of your token quota is left to send the tool results back to "
        "the model."
    ),
)

BUSY = re.compile(r"The model service is busy right now\. Please try again in (\d+) seconds?\.")
TOOL_ROUNDS = re.compile(r"The model kept calling tools; stopped after (\d+) rounds?\.")
UNSUPPORTED_OPTION = re.compile(
    r"This model does not accept one of the options sent \(([\w.]+)\)\. "
    r"Try again, or pick another model\."
)


def error_text(text: str) -> str:
    """Return a stored English error sentence in the active language."""
    if not text:
        return text
    if match := BUSY.fullmatch(text):
        seconds = int(match[1])
        return ngettext(
            "The model service is busy right now. Please try again in %(seconds)d second.",
            "The model service is busy right now. Please try again in %(seconds)d seconds.",
            seconds,
        ) % {"seconds": seconds}
    if match := TOOL_ROUNDS.fullmatch(text):
        rounds = int(match[1])
        return ngettext(
            "The model kept calling tools; stopped after %(rounds)d round.",
            "The model kept calling tools; stopped after %(rounds)d rounds.",
            rounds,
        ) % {"rounds": rounds}
    if match := UNSUPPORTED_OPTION.fullmatch(text):
        # The option is a request field name ("reasoning"), the same in every language.
        return gettext(
            "This model does not accept one of the options sent (%(option)s). "
            "Try again, or pick another model."
        ) % {"option": match[1]}
    return gettext(text)

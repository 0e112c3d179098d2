"""How a group conversation talks to the model: who said what, and when it answers.

In a group the model must know who wrote each message (the Responses API's messages
carry no name, so each person's text starts with their name) and that it is one voice
among several people. With more than two people they mostly talk among themselves, so
by default it answers only when mentioned (`@model`, the model's name, or the
assistant's); the owner picks "every message" or "only when mentioned" instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from conversations.groups.people import Person, former_member, group_people
from conversations.groups.people import with_writers as with_writers_of
from conversations.models import AnswerMode, Conversation

__all__ = [
    "MODEL_MENTIONS",
    "answers_every_message",
    "group_instructions",
    "mentions_model",
    "speakers",
    "spoken",
    "with_writers",
]

# What a member may type to call the model whatever it is called.
MODEL_MENTIONS = ("model", "ai", "assistant", "bot")


def speakers(conversation: Conversation) -> dict[int, str]:
    """Return the names of a group's people by user id, owner first; {} outside a group."""
    return {key: person.name for key, person in group_people(conversation).items()}


def with_writers(names: Mapping[int, str], branch: Sequence) -> dict[int, str]:
    """Return `names` with those of the branch's writers who left the group since."""
    writers = (m.author_id for m in branch if m.role == "user")
    people = with_writers_of({pk: Person(pk, name, "") for pk, name in names.items()}, writers)
    return {pk: person.name for pk, person in people.items()}


def spoken(text: str, author_id: int | None, names: Mapping[int, str]) -> str:
    """Return a question's text as the model reads it in a group: after its writer's name."""
    if not names:
        return text
    name = names.get(author_id) if author_id else None
    return f"{name or former_member().name}: {text}"


def group_instructions(names: Mapping[int, str]) -> str:
    """Return what the model is told about the group (nothing outside one)."""
    people = sorted(set(names.values()))
    if not people:
        return ""
    return (
        "This is a group conversation between "
        + ", ".join(people)
        + ". Each of their messages starts with the writer's name and a colon. "
        "Answer the person who asked you, by name when it helps; do not start your own "
        "message with a name."
    )


def answers_every_message(conversation: Conversation, people: int) -> bool:
    """Whether the model answers every message, or only when mentioned, with `people` in it."""
    if not conversation.is_group or conversation.answer_mode == AnswerMode.EVERY:
        return True
    if conversation.answer_mode == AnswerMode.MENTIONED:
        return False
    return people <= 2


def mentions_model(text: str, names: Sequence[str]) -> bool:
    """Whether `text` calls the model: `@model` (or @ai, @assistant, @bot), or `@` before
    one of `names` (the model's label, its upstream id, the assistant's name), any case.

    A name may hold spaces ("@GPT 4o mini"), so it is matched as written after the @;
    the mention must end at a word boundary, so "@aim" does not call "@ai".
    """
    folded = text.casefold()
    if "@" not in folded:
        return False
    for name in (*MODEL_MENTIONS, *names):
        name = name.strip().casefold()
        if name and re.search("@" + re.escape(name) + r"(?!\w)", folded):
            return True
    return False

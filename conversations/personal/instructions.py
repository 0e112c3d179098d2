"""A user's custom instructions, as the turns of their conversations send them.

"What should chatweb know about you?" and "How should it answer?" (`UserPreference`)
go with every turn of a conversation that has `Conversation.custom_instructions` on,
before the conversation's own instructions (`plans.turn_instructions`). A turn start
needs them every time and they change only when their owner saves the preferences page,
so each process keeps them per user (`conversations.usercache`), cleared when a
preference row is saved or deleted.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from conversations.models import UserPreference
from conversations.usercache import UserCache

__all__ = ["as_instructions", "custom_instructions", "texts", "watch_changes"]

texts: UserCache[str] = UserCache("custom-instructions", ttl=30)


def custom_instructions(user) -> str:
    """Return `user`'s (a user or their id) custom instructions as one text, or ""."""
    user_id = getattr(user, "pk", user)
    return texts.get(user_id, lambda: read(user_id))


def read(user_id: int) -> str:
    found = (
        UserPreference.objects.filter(user_id=user_id)
        .values_list("about_me", "answer_style")
        .first()
    )
    return as_instructions(*found) if found else ""


def as_instructions(about_me: str, answer_style: str) -> str:
    """Return the two answers as instructions the model can tell apart.

    The headings stay in English whatever the interface language: they speak to the
    model, which is told the user's words as the user wrote them.
    """
    parts = []
    if about_me.strip():
        parts.append(f"What the user wants you to know about them:\n{about_me.strip()}")
    if answer_style.strip():
        parts.append(f"How the user wants you to answer:\n{answer_style.strip()}")
    return "\n\n".join(parts)


def watch_changes() -> None:
    """Forget the kept texts whenever a preference row changes (see `usercache`)."""
    post_save.connect(texts.clear, sender=UserPreference, dispatch_uid="personal_saved")
    post_delete.connect(texts.clear, sender=UserPreference, dispatch_uid="personal_gone")

"""Close the open sockets of a user who loses access, or of a session that ends.

A deactivated or deleted account must stop seeing live answers at once, not when its
tab next reconnects: the user's sockets all listen on `user-<id>` and close when told.
A socket is authenticated once, when it opens, so signing out and changing the password
close sockets too: those of the session that signed out (`session-<digest>`), and every
socket of a user whose password changed. The page reconnects, and a session that no
longer signs in is sent to the sign-in page.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.pipeline import broadcast
from conversations.pipeline.broadcast import user_group

__all__ = [
    "end_session_on_logout",
    "end_sessions_on_password_change",
    "note_password_change",
    "revoke_on_deactivate",
    "revoke_on_delete",
]


def revoke(user_id: int) -> None:
    """Tell every socket of the user to close, once the change is committed."""

    def send() -> None:
        async_to_sync(get_channel_layer().group_send)(
            user_group(user_id), {"type": "chat.access_revoked"}
        )

    transaction.on_commit(send)


def revoke_on_deactivate(sender, instance, **kwargs) -> None:
    if not instance.is_active and instance.pk:
        revoke(instance.pk)


def revoke_on_delete(sender, instance, **kwargs) -> None:
    revoke(instance.pk)


def end_session_on_logout(sender, request, user, **kwargs) -> None:
    """Close the sockets opened with the session that is signing out."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        async_to_sync(broadcast.session_ended)(session_key=session.session_key)


def note_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    """Remember on the instance whether this save changes the stored password."""
    instance._password_changed = False
    if instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True)
    instance._password_changed = stored.first() not in (None, instance.password)


def end_sessions_on_password_change(sender, instance, **kwargs) -> None:
    """Close every socket of the user once the new password is committed."""
    if getattr(instance, "_password_changed", False):
        instance._password_changed = False
        user_id = instance.pk
        transaction.on_commit(lambda: async_to_sync(broadcast.session_ended)(user_id=user_id))

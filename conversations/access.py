"""Close the open sockets of a user who loses access.

A deactivated or deleted account must stop seeing live answers at once, not when its
tab next reconnects: the user's sockets all listen on `user-<id>` and close when told.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.broadcast import user_group

__all__ = ["revoke_on_deactivate", "revoke_on_delete"]


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

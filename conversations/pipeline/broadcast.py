"""Everything that crosses processes goes through here: group names and event dicts.

Live answer text does not: a generation hands fragments to watchers in its own process
directly (see `live.py`), because a channel-layer hop per fragment collapses beyond
about a hundred streams. The layer carries only the rare events below, plus coalesced
fragments for other processes: one message per process per flush, which that process's
hub hands to its own sockets (`live.py`).

Every socket of a user joins `user-<id>` (sidebar changes, sign-outs), and the socket
showing a conversation joins `conversation-<id>`: its turns reach every tab showing it,
the owner's and a group's members' alike.

`conversation_changed` makes every tab of the user re-read the conversation and redraw
its sidebar entry, so it is sent at most once a second per conversation and process:
the first change goes at once, later ones within the second are folded into one sent
when it ends, and that one is read after the last change, so every tab ends up with
the latest state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Iterable

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from conversations.pipeline.live import spawn

logger = logging.getLogger(__name__)

__all__ = [
    "branch_switched",
    "conversation_changed",
    "conversation_group",
    "removed_from_conversation",
    "send_to_channel",
    "session_ended",
    "session_group",
    "turn_finished",
    "turn_started",
    "user_group",
    "watch_event",
]


def user_group(user_id: int) -> str:
    """Return the group every socket of this user joins."""
    return f"user-{user_id}"


def conversation_group(conversation_id: int) -> str:
    """Return the group of the sockets showing a conversation: its members' pages hear
    its turns, presence and typing there, whoever's tab they are."""
    return f"conversation-{conversation_id}"


def session_group(session_key: str | None) -> str:
    """Return the group of the sockets opened with this session ("" without one).

    The key is a credential, so the group (a Redis key on the Redis layer) carries a
    digest of it.
    """
    if not session_key:
        return ""
    return "session-" + hashlib.sha256(session_key.encode()).hexdigest()[:40]


async def session_ended(*, session_key: str | None = None, user_id: int | None = None) -> None:
    """Close the sockets of a session that signed out, or of every session of a user."""
    group = session_group(session_key) if session_key else user_group(user_id)
    if group:
        await get_channel_layer().group_send(group, {"type": "chat.session_ended"})


async def _group_send(user_id: int, event: dict) -> None:
    await _send_to_group(user_group(user_id), event)


async def _send_to_group(group: str, event: dict) -> None:
    try:
        await get_channel_layer().group_send(group, event)
    except Exception:
        # A broadcast is a courtesy to other tabs; the turn itself must go on.
        logger.warning("could not broadcast %s", event["type"], exc_info=True)


async def turn_started(
    conversation_id: int,
    *,
    user_message_id: int | None,
    answer_id: int | None,
    branched: bool = False,
) -> None:
    """Tell the sockets showing the conversation that a new answer (and maybe a
    question) exists; `answer_id` is None for a group member's message the model does
    not answer.

    `branched` turns (edits, regenerations) change which branch is on show, so the
    sockets showing that conversation redraw it rather than append.
    """
    await _send_to_group(
        conversation_group(conversation_id),
        {
            "type": "chat.turn_started",
            "conversation_id": conversation_id,
            "user_message_id": user_message_id,
            "answer_id": answer_id,
            "branched": branched,
        },
    )


async def removed_from_conversation(user_id: int, conversation_id: int) -> None:
    """Tell a user's tabs they left a group conversation (or were removed): stop showing it."""
    await _group_send(
        user_id, {"type": "chat.removed_from_conversation", "conversation_id": conversation_id}
    )


async def branch_switched(conversation_id: int) -> None:
    """Tell the sockets showing the conversation that another branch is on show."""
    await _send_to_group(
        conversation_group(conversation_id),
        {"type": "chat.branch_switched", "conversation_id": conversation_id},
    )


async def turn_finished(conversation_id: int, *, answer_id: int) -> None:
    """Tell the sockets showing the conversation an answer is final, for those fed
    through the layer."""
    await _send_to_group(
        conversation_group(conversation_id),
        {"type": "chat.turn_finished", "conversation_id": conversation_id, "answer_id": answer_id},
    )


# Sidebar redraws of one conversation at most this often (leading and trailing edge).
CHANGED_INTERVAL_SECONDS = 1.0

# Per event loop (one per process under Daphne), like the hub: (user, conversation)
# whose tabs were told of a change within the last second -> whether it changed since.
_recent: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[int, int], bool]] = (
    weakref.WeakKeyDictionary()
)


async def conversation_changed(
    user_id: int, conversation_id: int, *, others: Iterable[int] = ()
) -> None:
    """Tell the user's sockets, and those of `others` (a group's other people), that a
    conversation's title or activity changed: their sidebars move it.

    At once if they were not told about it in the last second; otherwise once, when
    that second ends (see the module's docstring).
    """
    recent = _recent.setdefault(asyncio.get_running_loop(), {})
    for person in dict.fromkeys((user_id, *others)):
        key = (person, conversation_id)
        if key in recent:
            recent[key] = True
            continue
        _hold(recent, key)
        await _group_send(person, _changed_event(conversation_id))


def _hold(recent: dict[tuple[int, int], bool], key: tuple[int, int]) -> None:
    """Fold the conversation's changes of the next second into one (`_release`)."""
    recent[key] = False
    asyncio.get_running_loop().call_later(CHANGED_INTERVAL_SECONDS, _release, recent, key)


def _release(recent: dict[tuple[int, int], bool], key: tuple[int, int]) -> None:
    """Send what changed during the second that ended, and hold the next one."""
    if recent.pop(key):
        _hold(recent, key)
        user_id, conversation_id = key
        spawn(_group_send(user_id, _changed_event(conversation_id)))


def _changed_event(conversation_id: int) -> dict:
    return {"type": "chat.conversation_changed", "conversation_id": conversation_id}


async def send_to_channel(channel: str, event: dict) -> bool:
    """Send one event to one channel; return False when it could not be delivered."""
    try:
        await get_channel_layer().send(channel, event)
    except ChannelFull:
        logger.warning("channel %s is full; dropped %s", channel, event["type"])
        return False
    except Exception:
        logger.warning("could not send %s", event["type"], exc_info=True)
        return False
    return True


def watch_event(kind: str, answer_id: int, reply_channel: str, *, language: str = "") -> dict:
    """Return a request to the process generating an answer; `language`: what we read."""
    event = {"type": kind, "message_id": answer_id, "reply_channel": reply_channel}
    if language:
        event["language"] = language
    return event

"""Who is here now and who is typing, as one socket showing a conversation knows it.

No shared store: every socket showing a conversation keeps its own `Roster`, learned from
the events the sockets showing it send each other over the conversation's channel-layer
group (`broadcast.conversation_group`), in any process. The events (`*_event` below):

    room.hello   a socket started showing the conversation: each other socket records
                 it and answers it alone with a `room.here`, so it learns who is there
    room.here    "this socket shows the conversation": that answer, and every
                 HEARTBEAT_SECONDS (plus a little jitter) from every socket to the group
    room.bye     a socket stopped showing it: another conversation, closed, removed
    room.typing  its person typed in the composer (at most one every
                 TYPING_INTERVAL_SECONDS per socket), or with "typing": False sent it

Each carries the conversation's id, the sending socket's channel name and its person
(user id, display name, initials). A socket that vanished without a goodbye (its
process crashed) is dropped once not heard from for EXPIRY_SECONDS, two heartbeats
missed; a typer once not heard from for TYPING_SECONDS. The roster counts people, not
sockets: a person with two tabs is here once.

Pure: no Django, no channel layer. The consumer's `pipeline/rooms.py` sends, receives
and draws; `groups/people.py` names people (`display_name`, `initials`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "EXPIRY_SECONDS",
    "HEARTBEAT_SECONDS",
    "TYPING_INTERVAL_SECONDS",
    "TYPING_SECONDS",
    "Here",
    "Roster",
    "Throttle",
    "bye_event",
    "hello_event",
    "here_event",
    "person_of",
    "typing_event",
]

# Each socket says it is still here this often (at least; the consumer adds jitter).
HEARTBEAT_SECONDS = 25.0
# A socket not heard from for this long is gone: its process died without a goodbye.
EXPIRY_SECONDS = 60.0
# "Mei is typing…" lasts this long after Mei's last keystroke reached us.
TYPING_SECONDS = 6.0
# A socket tells the others its person is typing at most this often.
TYPING_INTERVAL_SECONDS = 3.0

# What an event may carry (events come from our own processes; this only bounds them).
MAX_NAME_CHARS = 300
MAX_INITIALS_CHARS = 8


@dataclass(frozen=True, slots=True)
class Here:
    """A person with a socket showing the conversation, as the page draws them."""

    user_id: int
    name: str
    initials: str


@dataclass(slots=True)
class _Seen:
    person: Here
    at: float


class Roster:
    """The sockets showing one conversation, by channel name, and who of them types.

    Methods that change what the page shows return True when it changed, so the caller
    draws only then: a heartbeat from someone already here changes nothing.
    """

    def __init__(
        self,
        conversation_id: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        expiry: float | None = None,
        typing_for: float | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.clock = clock
        # Read when the roster is made, so a test may shorten them.
        self.expiry = EXPIRY_SECONDS if expiry is None else expiry
        self.typing_for = TYPING_SECONDS if typing_for is None else typing_for
        # channel name -> (person, when last heard from)
        self.sockets: dict[str, _Seen] = {}
        # user id -> (name, typing until); in the order they started typing
        self.typers: dict[int, tuple[str, float]] = {}

    # --- Who is here ------------------------------------------------------------------

    def saw(self, channel: str, person: Here) -> bool:
        """Note that `channel` shows the conversation now; True if the people changed."""
        known = self.sockets.get(channel)
        if known is not None and known.person == person:
            known.at = self.clock()
            return False
        before = self.people()
        self.sockets[channel] = _Seen(person, self.clock())
        return self.people() != before

    def left(self, channel: str) -> bool:
        """Forget a socket that said goodbye; True if its person is no longer here."""
        gone = self.sockets.pop(channel, None)
        if gone is None or self.present(gone.person.user_id):
            return False
        self.typers.pop(gone.person.user_id, None)
        return True

    def expire(self, *, keep: str = "") -> bool:
        """Drop the sockets not heard from for `expiry` (but `keep`, the caller's own);
        True if the people changed."""
        oldest = self.clock() - self.expiry
        stale = [c for c, seen in self.sockets.items() if seen.at < oldest and c != keep]
        if not stale:
            return False
        before = self.people()
        for channel in stale:
            del self.sockets[channel]
        for user_id in [u for u in self.typers if not self.present(u)]:
            del self.typers[user_id]
        return self.people() != before

    def present(self, user_id: int) -> bool:
        return any(seen.person.user_id == user_id for seen in self.sockets.values())

    def others(self, user_id: int) -> bool:
        """True if anyone but `user_id` is here: someone to tell about their typing."""
        return any(seen.person.user_id != user_id for seen in self.sockets.values())

    def people(self) -> list[Here]:
        """Return the people here, each once however many tabs they have, by name."""
        latest: dict[int, _Seen] = {}
        for seen in self.sockets.values():
            known = latest.get(seen.person.user_id)
            if known is None or seen.at >= known.at:
                latest[seen.person.user_id] = seen
        people = [seen.person for seen in latest.values()]
        return sorted(people, key=lambda person: (person.name.casefold(), person.user_id))

    # --- Who is typing ----------------------------------------------------------------

    def typing(self, user_id: int, name: str) -> bool:
        """Note that `user_id` typed just now; True if they were not typing before."""
        known = self.typers.get(user_id)
        self.typers[user_id] = (name, self.clock() + self.typing_for)
        return known is None or known[0] != name

    def stopped_typing(self, user_id: int) -> bool:
        """Forget a typer (they sent their message); True if they were typing."""
        return self.typers.pop(user_id, None) is not None

    def expire_typing(self) -> bool:
        """Drop typers not heard from for `typing_for`; True if any was dropped."""
        now = self.clock()
        done = [user_id for user_id, (_name, until) in self.typers.items() if until <= now]
        for user_id in done:
            del self.typers[user_id]
        return bool(done)

    def typing_names(self) -> list[str]:
        """Return the names of those typing, first to start first."""
        return [name for name, _until in self.typers.values()]

    def next_typing_end(self) -> float | None:
        """Return when the next typer expires, on `clock`; None if nobody types."""
        return min((until for _name, until in self.typers.values()), default=None)


class Throttle:
    """At most one go every `seconds`; what comes in between is dropped."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.last = -math.inf

    def ready(self) -> bool:
        """Take a go if one is due; False means drop this one."""
        now = self.clock()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


# --- Events -------------------------------------------------------------------------


def _event(kind: str, conversation_id: int, channel: str, person: Here | None) -> dict:
    event = {"type": f"room.{kind}", "conversation_id": conversation_id, "channel": channel}
    if person is not None:
        event.update(user_id=person.user_id, name=person.name, initials=person.initials)
    return event


def hello_event(conversation_id: int, channel: str, person: Here) -> dict:
    """A socket started showing the conversation; the others answer with `here_event`."""
    return _event("hello", conversation_id, channel, person)


def here_event(conversation_id: int, channel: str, person: Here) -> dict:
    """A socket shows the conversation: an answer to a hello, or a heartbeat."""
    return _event("here", conversation_id, channel, person)


def bye_event(conversation_id: int, channel: str) -> dict:
    """A socket stopped showing the conversation."""
    return _event("bye", conversation_id, channel, None)


def typing_event(conversation_id: int, channel: str, person: Here, *, typing: bool) -> dict:
    """A person typed (`typing`), or sent what they typed (not `typing`)."""
    return {**_event("typing", conversation_id, channel, person), "typing": typing}


def person_of(event: dict) -> Here | None:
    """Return the person an event names; None if it names none properly."""
    user_id, name, initials = event.get("user_id"), event.get("name"), event.get("initials")
    if type(user_id) is not int or not isinstance(name, str) or not isinstance(initials, str):
        return None
    return Here(user_id, name[:MAX_NAME_CHARS], initials[:MAX_INITIALS_CHARS])

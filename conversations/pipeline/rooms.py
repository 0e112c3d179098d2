"""Presence and typing on the chat socket: the `room.*` events of `groups.presence`.

`RoomMixin` is a part of `ChatConsumer` (conversations/pipeline/consumers.py), kept apart
as `OutboxMixin` is. Once the consumer has joined the group of the conversation a watch
authorised (`enter_room`), it calls `announce`; before it leaves that group,
`say_goodbye`; for a typing frame, `typed`; for a message it sent, `sent_message`. The
mixin keeps the socket's `Roster`, says every HEARTBEAT_SECONDS that it is still here,
and draws the header's presence bar and the typing line through the outbox.

What it costs the channel layer: a hello and a goodbye per conversation shown, one answer
to each hello from each socket already there, one heartbeat per socket every 25-28 s,
and at most one typing event per socket every TYPING_INTERVAL_SECONDS (plus one "sent"
after each of those), none while nobody else is there. Nothing per fragment.

The protocol runs for every conversation a socket shows, but the page shows the bar only
for a group conversation, or when another person turns up (a conversation that has just
become a group): in a private chat only its owner's tabs could be there.
"""

from __future__ import annotations

import asyncio
import logging
import random
from functools import cached_property

from django.utils import translation

from conversations.groups import presence
from conversations.groups.people import display_name, initials
from conversations.groups.presence import Here, Roster, Throttle
from conversations.pipeline import broadcast, fragments

logger = logging.getLogger(__name__)

__all__ = ["RoomMixin"]

# Changes arriving together (the answers to a hello) are drawn once, this much later.
DRAW_DELAY_SECONDS = 0.1
# What a draw covers.
PRESENCE = "presence"
TYPING = "typing"


class RoomMixin:
    """Who else shows the conversation this socket shows, and who of them is typing."""

    roster: Roster | None = None
    # Whether the conversation is a group: the page then shows the bar, whoever is here.
    room_is_group = False
    # The socket told the others its person is typing, and has not said "sent" since.
    announced_typing = False
    # The page shows the presence bar: keep it up to date, whoever is left.
    bar_shown = False
    # What the next draw covers (PRESENCE, TYPING).
    dirty: frozenset[str] = frozenset()
    typing_throttle: Throttle | None = None
    heartbeat: asyncio.Task | None = None
    draw_timer: asyncio.TimerHandle | None = None
    typing_timer: asyncio.TimerHandle | None = None

    @cached_property
    def person_here(self) -> Here:
        """This socket's person as the others draw them."""
        name = display_name(self.user)
        return Here(self.user.pk, name, initials(name))

    # --- Called by the consumer -------------------------------------------------------

    async def announce(self, room: str, conversation_id: int, *, group: bool) -> None:
        """Say to the conversation's group that this socket shows it (just joined)."""
        self.forget_room()
        self.roster = roster = Roster(conversation_id)
        self.room_is_group = group
        self.typing_throttle = Throttle(presence.TYPING_INTERVAL_SECONDS)
        roster.saw(self.channel_name, self.person_here)
        self.heartbeat = asyncio.create_task(self.keep_present(room, roster))
        await self.to_room(
            room, presence.hello_event(conversation_id, self.channel_name, self.person_here)
        )
        self.draw_soon(PRESENCE, TYPING)

    def show_room(self, *, group: bool) -> None:
        """Draw the presence bar and typing line again: the page drew its header anew
        (it loaded the conversation again) without the socket leaving the room."""
        if self.roster is not None:
            self.room_is_group = group
            self.draw_soon(PRESENCE, TYPING)

    async def say_goodbye(self, room: str) -> None:
        """Tell the group this socket no longer shows the conversation; stop listening."""
        roster = self.roster
        self.forget_room()
        if roster is not None:
            await self.to_room(room, presence.bye_event(roster.conversation_id, self.channel_name))

    async def typed(self, conversation_id: int | None) -> None:
        """The page's person typed in the composer: tell the others, at most every 3 s.

        Dropped without a word when the socket shows no conversation (or another one
        than the frame names), when nobody else is there, and between announcements.
        """
        roster = self.roster
        if roster is None or not self.room or roster.conversation_id != self.conversation_id:
            return
        if conversation_id is not None and conversation_id != roster.conversation_id:
            return
        if not roster.others(self.user.pk) or not self.typing_throttle.ready():
            return
        self.announced_typing = True
        event = presence.typing_event(
            roster.conversation_id, self.channel_name, self.person_here, typing=True
        )
        await self.to_room(self.room, event)

    async def sent_message(self, conversation_id: int | None) -> None:
        """The page sent a message: whoever was told its person types stops showing it."""
        roster = self.roster
        if not self.announced_typing or roster is None or not self.room:
            return
        if conversation_id != roster.conversation_id:
            return
        self.announced_typing = False
        event = presence.typing_event(
            roster.conversation_id, self.channel_name, self.person_here, typing=False
        )
        await self.to_room(self.room, event)

    def forget_room(self) -> None:
        """Stop the heartbeat and the timers; forget who was here."""
        self.roster = None
        self.announced_typing = self.bar_shown = False
        self.dirty = frozenset()
        for timer in (self.draw_timer, self.typing_timer):
            if timer is not None:
                timer.cancel()
        self.draw_timer = self.typing_timer = None
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None

    # --- Events from the conversation's group ------------------------------------------

    async def room_hello(self, event: dict) -> None:
        """A socket started showing the conversation: note it, and say who we are."""
        roster, person = self.roster_for(event)
        if roster is None:
            return
        if roster.saw(event["channel"], person):
            self.draw_soon(PRESENCE)
        reply = presence.here_event(roster.conversation_id, self.channel_name, self.person_here)
        await broadcast.send_to_channel(event["channel"], reply)

    async def room_here(self, event: dict) -> None:
        """A socket shows the conversation (an answer to our hello, or a heartbeat)."""
        roster, person = self.roster_for(event)
        if roster is not None and roster.saw(event["channel"], person):
            self.draw_soon(PRESENCE)

    async def room_bye(self, event: dict) -> None:
        roster, _person = self.roster_for(event, named=False)
        if roster is not None and roster.left(event["channel"]):
            self.draw_soon(PRESENCE, TYPING)

    async def room_typing(self, event: dict) -> None:
        """Someone typed, or sent what they typed; never shown to the typer's own tabs."""
        roster, person = self.roster_for(event)
        if roster is None:
            return
        if roster.saw(event["channel"], person):
            self.draw_soon(PRESENCE)
        if person.user_id == self.user.pk:
            return
        if event.get("typing") is False:
            changed = roster.stopped_typing(person.user_id)
        else:
            changed = roster.typing(person.user_id, person.name)
        if changed:
            self.draw_soon(TYPING)
        self.expire_typing_later()

    def roster_for(self, event: dict, *, named: bool = True) -> tuple[Roster | None, Here | None]:
        """Return the roster an event from another socket updates, and its person; no
        roster for our own events, another conversation's, or a socket closing."""
        roster = self.roster
        if (
            roster is None
            or self.closing
            or event.get("channel") == self.channel_name
            or not isinstance(event.get("channel"), str)
            or event.get("conversation_id") != roster.conversation_id
            or roster.conversation_id != self.conversation_id
        ):
            return None, None
        person = presence.person_of(event)
        if named and person is None:
            return None, None
        return roster, person

    # --- Time -------------------------------------------------------------------------

    async def keep_present(self, room: str, roster: Roster) -> None:
        """Say every ~25 s that this socket is still here, and drop those who stopped."""
        while True:
            await asyncio.sleep(presence.HEARTBEAT_SECONDS * random.uniform(1.0, 1.1))
            roster.saw(self.channel_name, self.person_here)
            event = presence.here_event(roster.conversation_id, self.channel_name, self.person_here)
            await self.to_room(room, event)
            if roster.expire(keep=self.channel_name):
                self.draw_soon(PRESENCE, TYPING)

    def expire_typing_later(self) -> None:
        """Have the typing line redrawn when its first typer's time is up."""
        if self.typing_timer is not None:
            self.typing_timer.cancel()
            self.typing_timer = None
        roster = self.roster
        end = roster.next_typing_end() if roster is not None else None
        if end is not None:
            delay = max(0.0, end - roster.clock()) + 0.05
            self.typing_timer = asyncio.get_running_loop().call_later(delay, self.typing_ended)

    def typing_ended(self) -> None:
        self.typing_timer = None
        if self.roster is not None:
            if self.roster.expire_typing():
                self.draw_soon(TYPING)
            self.expire_typing_later()

    # --- Drawing ----------------------------------------------------------------------

    def draw_soon(self, *parts: str) -> None:
        """Draw these parts soon, once for all the changes until then."""
        self.dirty = self.dirty.union(parts)
        if self.draw_timer is None:
            loop = asyncio.get_running_loop()
            self.draw_timer = loop.call_later(DRAW_DELAY_SECONDS, self.draw_room)

    def draw_room(self) -> None:
        self.draw_timer = None
        parts, self.dirty = self.dirty, frozenset()
        roster = self.roster
        if roster is None or self.closing:
            return
        people = roster.people()
        if not (self.room_is_group or self.bar_shown or len(people) > 1):
            return  # a private chat: nobody but its owner could be here
        self.bar_shown = True
        html = ""
        with translation.override(self.language):
            if PRESENCE in parts:
                html += fragments.presence_html(people, conversation_id=roster.conversation_id)
            if TYPING in parts:
                names = roster.typing_names()
                html += fragments.typing_html(names, conversation_id=roster.conversation_id)
        self.queue(html)

    async def to_room(self, room: str, event: dict) -> None:
        """Send to the conversation's group; presence is a courtesy, never an error."""
        try:
            await self.channel_layer.group_send(room, event)
        except Exception:
            logger.warning("could not send %s", event["type"], exc_info=True)

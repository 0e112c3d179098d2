"""The chat websocket: parse, authorise, hand off to `turns`, render. Nothing else.

The page opens one socket and says which conversation it shows (`watch`); the
consumer then sends that conversation's live updates as htmx out-of-band fragments.
The frames the page sends are described and parsed in `frames`.
"""

from __future__ import annotations

import logging
import secrets
from functools import cached_property
from itertools import count

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.utils import translation
from django.utils.translation import gettext

from conversations import preferences
from conversations.history import reads
from conversations.pipeline import broadcast, fragments, runs, turns
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.frames import (
    Malformed,
    is_typing,
    optional_id,
    parse_frame,
    required_id,
    text_field,
    turn_options,
)
from conversations.pipeline.live import AWAITING_SNAPSHOT, Fragment, get_hub, spawn
from conversations.pipeline.outbox import MAX_OUTBOX, OutboxMixin
from conversations.pipeline.rooms import RoomMixin
from conversations.pipeline.shutdown import Restarting, refuse_while_draining
from conversations.pipeline.socketlimits import FrameBudget

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_ACCESS_REVOKED = 4403
# The page reconnects and sends again. Not 1012 ("service restart"): Daphne's websocket
# library refuses any server close code but 1000 and 3000-4999.
CLOSE_RESTARTING = 4503
# The page fell too far behind the fragments: it reconnects and resyncs.
CLOSE_TOO_SLOW = 4408
# More than CHAT_SOCKET_BACKLOG_BYTES left unread: the page reconnects and resyncs.
CLOSE_BACKLOG = 4429
# The session signed out or the password changed: the page reconnects, and a session
# that no longer signs in is sent to the sign-in page (4401).
CLOSE_SESSION_ENDED = 4440


class ChatConsumer(RoomMixin, OutboxMixin, AsyncWebsocketConsumer):
    # Set once the socket is being closed: nothing more is read or sent on it.
    closing = False

    async def dispatch(self, message: dict) -> None:
        """Handle one event, in the language this socket opened with.

        A database that is briefly gone must not kill the socket: a restart or failover
        of PostgreSQL drops every connection, the query that meets a dead one fails and
        the next one gets a fresh connection, so the page is told to try again.
        """
        with translation.override(self.language):
            try:
                await super().dispatch(message)
            except DatabaseError:
                logger.warning("database error handling %s", message.get("type"), exc_info=True)
                if message.get("type") != "websocket.connect":
                    text = gettext("The server lost its database for a moment. Please try again.")
                    await self.send(text_data=fragments.toast_html(text))

    @cached_property
    def language(self) -> str:
        """The language this socket reads; live answers are rendered in it too."""
        return preferences.language_for_scope(self.scope)

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            # Accept, then close: a handshake refused reaches the browser as 1006 with
            # no code, which the page (and htmx's ws extension) retries for ever; a
            # close code after the handshake tells the page to go and sign in.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.conversation_id: int | None = None
        # The group of the conversation on show (`broadcast.conversation_group`), or "".
        self.room = ""
        # Answers this socket follows: message id -> last sequence number applied.
        self.following: dict[int, int] = {}
        # Messages on the page since the last transcript, so no event draws one twice.
        self.drawn: set[int] = set()
        self.frames = FrameBudget(settings.CHAT_FRAMES_PER_SECOND, settings.CHAT_FRAME_BURST)
        # Names for turns drawn before they are saved; random per socket, so a page that
        # reconnected never meets a name its earlier socket gave out.
        self.pending_names = (f"turn-{secrets.token_hex(4)}-{n}" for n in count(1))
        self.throttled = False
        self.session_group = broadcast.session_group(self.scope["session"].session_key)
        self.open_outbox()
        await self.channel_layer.group_add(broadcast.user_group(self.user.pk), self.channel_name)
        if self.session_group:
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "outbox"):
            return
        await self.unfollow_all()
        await self.leave_room()
        self.pump.cancel()
        await self.channel_layer.group_discard(
            broadcast.user_group(self.user.pk), self.channel_name
        )
        if self.session_group:
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closing = True
        await super().close(code=code, reason=reason)

    # --- Frames from the page -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.closing:
            return
        if not self.frames.take():
            # One notice per flood: answering every dropped frame would feed the flood.
            # Typing frames go unanswered: the page sends them as the user types.
            if not self.throttled and not is_typing(text_data):
                self.throttled = True
                text = gettext("Too many requests at once. Wait a moment and try again.")
                await self.send(text_data=fragments.toast_html(text))
            return
        self.throttled = False
        try:
            frame = parse_frame(text_data)
            action = frame.get("action")
            if action == "watch":
                await self.watch(optional_id(frame, "conversation"))
            elif action == "typing":
                await self.typed(optional_id(frame, "conversation"))
            elif action == "send":
                await self.send_turn(frame)
            elif action == "stop":
                await turns.stop(user=self.user, message_id=required_id(frame, "message"))
            elif action in ("regenerate", "retry"):
                plan = await turns.regenerate(
                    user=self.user,
                    message_id=required_id(frame, "message"),
                    model_id=optional_id(frame, "model"),
                    options=turn_options(frame),
                )
                await self.redraw(plan.conversation_id)
                await self.show_notices(plan.notices)
            elif action == "edit":
                plan = await turns.edit(
                    user=self.user,
                    message_id=required_id(frame, "message"),
                    text=text_field(frame, "text"),
                )
                await self.redraw(plan.conversation_id)
                await self.show_notices(plan.notices)
            elif action == "branch":
                conversation_id = await turns.switch_branch(
                    user=self.user, message_id=required_id(frame, "message")
                )
                await self.redraw(conversation_id)
            else:
                raise Malformed(f"unknown action {action!r}")
        except Malformed as error:
            logger.info("malformed frame from user %s: %s", self.user.pk, error)
            await self.send(
                text_data=fragments.toast_html(gettext("That request could not be read."))
            )
        except turns.Refused as error:
            await self.send(text_data=await self.refusal_html(error))
            if isinstance(error, Restarting):
                # This process is shutting down: the page reconnects, through the load
                # balancer, to one that takes turns, and sends again.
                await self.close(code=CLOSE_RESTARTING)

    async def refusal_html(self, error: turns.Refused) -> str:
        """Say above the composer why a turn was refused; the page puts the text back."""
        html = fragments.composer_error_html(
            error.user_message, retry=isinstance(error, Restarting)
        )
        if isinstance(error, turns.ModelUnavailable):
            # The picker offered a model that is gone: show what may be picked now.
            html += await in_database_thread(fragments.model_picker_html)(self.user)
        return html

    async def watch(self, conversation_id: int | None, *, changed: bool = False) -> None:
        """Show `conversation_id`: resync its transcript and follow its live answers.

        A watch of the conversation on show whose transcript the page has not yet read
        changes nothing, so repeating it does not queue another copy; `changed` (another
        branch is on show) draws it again all the same.
        """
        showing = conversation_id is not None and conversation_id == self.conversation_id
        if showing and not changed and self.transcript_unread():
            return
        await self.unfollow_all()
        self.forget_transcript()
        if conversation_id != self.conversation_id:
            await self.leave_room()
        self.conversation_id = None
        if conversation_id is None:
            return
        view = await in_database_thread(reads.transcript)(self.user, conversation_id)
        if view is None:
            # Gone, or no longer ours to read (a member removed): be here no more.
            await self.leave_room()
            await self.send(
                text_data=fragments.toast_html(gettext("This conversation does not exist."))
            )
            return
        self.conversation_id = conversation_id
        await self.enter_room(conversation_id, group=view.conversation.is_group)
        self.drawn = {message.pk for message in view.messages}
        # Through the outbox, behind any fragment still queued, so none lands after it.
        self.queued_transcript = fragments.transcript_html(view, staff=self.user.is_staff)
        self.queue(self.queued_transcript)
        for answer in view.streaming:
            await self.follow(answer.pk)

    async def send_turn(self, frame: dict) -> None:
        """Show the turn at once, drawn from the frame; then save it and start the answer.

        The page need not wait for the save (a transaction queued behind every other
        turn's) to see its question: the bubbles drawn from the frame go out first and
        the saved ones replace them, before any fragment of the answer, which names the
        saved answer. A save that fails leaves the question on the page as an error with
        its text, and puts the text back in the composer, so nothing typed is lost.
        """
        sent_from = optional_id(frame, "conversation")
        text = text_field(frame, "text")
        model_id = optional_id(frame, "model")
        instructions = text_field(frame, "instructions") if "instructions" in frame else None
        options = turn_options(frame)
        # A process shutting down draws nothing: the page sends again to another one.
        refuse_while_draining()
        pending = fragments.PendingTurn(next(self.pending_names), text, sent_from)
        self.queue(fragments.pending_turn_html(pending))
        await self.sent_message(sent_from)  # the others' "… is typing" ends now
        try:
            result = await turns.save_send(
                user=self.user,
                conversation_id=sent_from,
                text=text,
                model_id=model_id,
                instructions=instructions,
                options=options,
            )
        except turns.Refused as error:
            reason = error.user_message
            self.queue(
                fragments.pending_failed_html(pending, reason) + await self.refusal_html(error)
            )
            return
        except DatabaseError:
            logger.warning("database error saving a turn of user %s", self.user.pk, exc_info=True)
            reason = gettext("The server lost its database for a moment. Please try again.")
            self.queue(
                fragments.pending_failed_html(pending, reason)
                + fragments.composer_error_html(reason)
            )
            return
        if result.conversation.pk != self.conversation_id:
            await self.unfollow_all()
            self.forget_transcript()
            await self.leave_room()
            self.conversation_id = result.conversation.pk
            await self.enter_room(result.conversation.pk, group=result.conversation.is_group)
        views = list(result.messages)
        self.drawn.update(view.message.pk for view in views)
        # Queued before the answer starts, so the saved bubbles are on the page before
        # any fragment that names them.
        self.queue(fragments.accepted_turn_html(views, pending, staff=self.user.is_staff))
        notices = list(result.plan.notices) if result.plan else []
        self.queue(
            fragments.turn_accepted_html(
                result.conversation, notices, sent_from=sent_from, viewer_id=self.user.pk
            )
        )
        await turns.start_send(self.user, result)
        if result.plan is not None:
            await self.follow(result.plan.answer_id)

    async def enter_room(self, conversation_id: int, *, group: bool = False) -> None:
        """Listen to the conversation's group: its turns, presence and typing.

        Only for a conversation `watch` (or a send) authorised. `group`: a group
        conversation, whose page shows who is here (`rooms.RoomMixin`).
        """
        room = broadcast.conversation_group(conversation_id)
        if room == self.room:
            self.show_room(group=group)  # the page may have drawn its header anew
            return
        await self.leave_room()
        self.room = room
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.announce(room, conversation_id, group=group)

    async def leave_room(self) -> None:
        """Stop listening to the conversation's group, saying goodbye (`room.bye`)."""
        room, self.room = self.room, ""
        if room:
            await self.say_goodbye(room)
            await self.channel_layer.group_discard(room, self.channel_name)

    async def show_notices(self, notices: tuple[str, ...]) -> None:
        """Say why a regeneration or an edit runs on another model than the chat's."""
        if notices:
            await self.send(text_data=fragments.composer_notices_html(list(notices)))

    async def redraw(self, conversation_id: int) -> None:
        """Draw the conversation's branch on show again (after an edit or a switch)."""
        if conversation_id == self.conversation_id:
            await self.watch(conversation_id, changed=True)

    # --- Events from the channel layer --------------------------------------------------

    async def chat_turn_started(self, event: dict) -> None:
        """Another tab (maybe on another process) started a turn in this conversation."""
        if event["conversation_id"] != self.conversation_id:
            return
        if event["answer_id"] is None:
            # A group member's message the model does not answer.
            await self.show_new_message(event["user_message_id"])
            return
        if event["answer_id"] in self.drawn:
            return  # this socket drew it already (its own send, or a transcript since)
        if event["branched"]:
            if event["answer_id"] not in self.following:
                await self.watch(self.conversation_id, changed=True)
        else:
            await self.show_new_turn(event["user_message_id"], event["answer_id"])

    async def chat_access_revoked(self, event: dict) -> None:
        """The account was deactivated or deleted: stop showing anything at once."""
        await self.unfollow_all()
        await self.close(code=CLOSE_ACCESS_REVOKED)

    async def chat_session_ended(self, event: dict) -> None:
        """The session signed out, or the password changed: stop at once, resync after."""
        await self.unfollow_all()
        await self.close(code=CLOSE_SESSION_ENDED)

    async def chat_removed_from_conversation(self, event: dict) -> None:
        """The user left the group or was removed: stop showing it, streaming included."""
        if event["conversation_id"] != self.conversation_id:
            return
        await self.watch(None)
        await self.send(text_data=fragments.removed_html())

    async def chat_branch_switched(self, event: dict) -> None:
        await self.redraw(event["conversation_id"])

    async def chat_turn_finished(self, event: dict) -> None:
        """An answer is final; re-read it if its last fragment did not reach us."""
        answer_id = event["answer_id"]
        if answer_id in self.following:
            self.forget(answer_id)
            message = await in_database_thread(reads.message)(self.user, answer_id)
            if message is not None:
                await self.send(text_data=fragments.message_html(message, staff=self.user.is_staff))

    async def chat_conversation_changed(self, event: dict) -> None:
        conversation, people = await in_database_thread(reads.sidebar_entry)(
            self.user, event["conversation_id"]
        )
        await self.send(
            text_data=fragments.conversation_changed_html(
                event["conversation_id"],
                conversation,
                active=self.conversation_id,
                viewer_id=self.user.pk,
                people=people,
            )
        )

    # --- Following answers --------------------------------------------------------------

    async def show_new_turn(self, user_message_id: int | None, answer_id: int) -> None:
        """Append a turn another tab started, read from the database, and follow its answer."""
        if answer_id in self.following or answer_id in self.drawn:
            return
        messages = await in_database_thread(reads.messages)(self.user, [user_message_id, answer_id])
        if not messages or answer_id in self.drawn:  # drawn while the read ran
            return
        self.drawn.update(shown.message.pk for shown in messages)
        self.queue(fragments.new_messages_html(messages, staff=self.user.is_staff))
        answer = messages[-1].message
        if answer.is_streaming:
            await self.follow(answer.pk)

    async def show_new_message(self, message_id: int) -> None:
        """Append a group member's message that asked the model nothing."""
        if message_id in self.drawn:
            return
        messages = await in_database_thread(reads.messages)(self.user, [message_id])
        if not messages or message_id in self.drawn:
            return
        self.drawn.add(message_id)
        self.queue(fragments.new_messages_html(messages, staff=self.user.is_staff))

    async def follow(self, answer_id: int) -> None:
        """Receive the answer's fragments: straight from the generation if it runs in this
        process, else from the hub, which relays the process that generates it (one feed
        for every socket here, not one per socket)."""
        self.following[answer_id] = AWAITING_SNAPSHOT
        hub = get_hub()
        snapshot = hub.attach(answer_id, self)
        if snapshot is not None:
            self.deliver(snapshot)
            return
        worker_channel = await in_database_thread(runs.worker_channel)(answer_id)
        if not worker_channel or answer_id not in self.following:
            return  # it ended, or this socket moved on during the read
        await hub.follow_remote(answer_id, worker_channel, self)
        if answer_id not in self.following:  # the socket moved on meanwhile
            hub.unfollow_remote(self, answer_id)

    async def unfollow_all(self) -> None:
        get_hub().detach(self)
        self.following.clear()

    def forget(self, answer_id: int) -> None:
        """Stop following an answer: it ended (its final bubble is on the page or read)."""
        self.following.pop(answer_id, None)
        get_hub().unfollow_remote(self, answer_id)

    def deliver(self, fragment: Fragment) -> None:
        """Take a fragment from a local generation, or relayed by the hub from another
        process (called by the hub, never blocks)."""
        self.apply(fragment)

    def apply(self, fragment: Fragment) -> None:
        """Queue the fragment for the page if it is the next one, in order.

        A snapshot or the final bubble replaces the whole body; a delta only continues
        the one the page holds, so none is taken before the first snapshot.
        """
        last = self.following.get(fragment.message_id)
        if last is None:
            return
        if not (fragment.snapshot or fragment.final) and (
            last == AWAITING_SNAPSHOT or fragment.seq <= last
        ):
            return
        self.following[fragment.message_id] = fragment.seq
        if fragment.final:
            self.forget(fragment.message_id)
        self.queue(fragment.html_for(self.language))
        if self.outbox.qsize() > MAX_OUTBOX:
            # The browser cannot keep up; drop it, and it reconnects with a fresh snapshot.
            get_hub().detach(self)
            self.following.clear()
            spawn(self.close(code=CLOSE_TOO_SLOW))

    def forget_transcript(self) -> None:
        """The page is about to show another conversation (or none)."""
        self.drawn = set()
        self.queued_transcript = None
        self.transcript_end = 0

    async def give_up_on_reader(self) -> None:
        """Let go of a page that left too much unread (`OutboxMixin.send`)."""
        get_hub().detach(self)
        self.following.clear()
        self.empty_outbox()
        await self.close(code=CLOSE_BACKLOG)

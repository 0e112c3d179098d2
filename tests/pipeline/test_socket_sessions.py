"""Open chat sockets end with their session: signing out, a password change.

A socket is authenticated once, when it opens; these tests show that an open one does
not outlive the session (issue #17, point 4). They run on whichever channel layer the
settings name, so with REDIS_URL set the close travels through Redis, as it would from
another process.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatweb.asgi import application
from conversations.models import Message
from conversations.pipeline.consumers import CLOSE_SESSION_ENDED
from tests.support import attacks
from tests.support.chat import ORIGIN, receive_until, send

pytestmark = pytest.mark.django_db(transaction=True)

GONE = "This conversation does not exist."


@sync_to_async
def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def socket_for(client: Client) -> WebsocketCommunicator:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await socket.connect()
    assert connected
    return socket


async def close_code(socket: WebsocketCommunicator) -> int | None:
    """Return the code the socket is closed with, skipping updates still in flight."""
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output.get("code")


async def still_answers(socket: WebsocketCommunicator) -> bool:
    await send(socket, action="watch", conversation="9223372036854775807")
    return bool(await receive_until(socket, lambda frame: GONE in frame, timeout=5))


@sync_to_async
def message_count() -> int:
    return Message.objects.count()


async def test_logout_closes_that_sessions_socket(gateway, user):
    client = await signed_in(user)
    socket = await socket_for(client)

    await sync_to_async(client.post)("/accounts/logout/")

    assert await close_code(socket) == CLOSE_SESSION_ENDED


async def test_logout_leaves_the_users_other_sessions_open(gateway, user):
    leaving, staying = await signed_in(user), await signed_in(user)
    socket, other = await socket_for(leaving), await socket_for(staying)

    await sync_to_async(leaving.post)("/accounts/logout/")

    assert await close_code(socket) == CLOSE_SESSION_ENDED
    assert await still_answers(other)
    attacks.record(
        "an open socket after POST /accounts/logout/",
        before="stayed open; could start turns and read transcripts",
        observed=f"closed ({CLOSE_SESSION_ENDED}); the user's other session stays open",
    )
    await other.disconnect()


async def test_a_socket_closed_by_logout_starts_no_turn(gateway, user):
    client = await signed_in(user)
    socket = await socket_for(client)
    await sync_to_async(client.post)("/accounts/logout/")
    await close_code(socket)

    await send(socket, action="send", conversation="", text="Still there?")

    assert await socket.receive_nothing(timeout=0.5)
    assert await message_count() == 0


async def test_set_password_closes_every_socket_of_the_user(gateway, user):
    first, second = await socket_for(await signed_in(user)), await socket_for(await signed_in(user))

    user.set_password("a-new-password-456")
    await sync_to_async(user.save)()

    assert await close_code(first) == CLOSE_SESSION_ENDED
    assert await close_code(second) == CLOSE_SESSION_ENDED


async def test_admin_password_change_closes_the_users_sockets(gateway, user, make_user):
    socket = await socket_for(await signed_in(user))
    admin = await signed_in(
        await sync_to_async(make_user)("admin", is_staff=True, is_superuser=True)
    )
    form = {"password1": "x-New-pass-789", "password2": "x-New-pass-789", "usable_password": "true"}

    response = await sync_to_async(admin.post)(f"/admin/auth/user/{user.pk}/password/", form)

    assert response.status_code == 302
    assert await close_code(socket) == CLOSE_SESSION_ENDED
    attacks.record(
        "open sockets after an admin resets the user's password",
        before="stayed open",
        observed=f"closed ({CLOSE_SESSION_ENDED})",
    )


async def test_saving_a_user_without_a_new_password_keeps_sockets_open(gateway, user):
    socket = await socket_for(await signed_in(user))

    user.first_name = "Ming"
    await sync_to_async(user.save)()

    assert await still_answers(socket)
    await socket.disconnect()


async def test_a_session_that_signed_out_cannot_reconnect(gateway, user):
    client = await signed_in(user)
    cookie = client.cookies["sessionid"].value
    await sync_to_async(client.post)("/accounts/logout/")

    socket = WebsocketCommunicator(
        application, "/ws/chat/", headers=[ORIGIN, (b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, _ = await socket.connect()

    assert connected
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}

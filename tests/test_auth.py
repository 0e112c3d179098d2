from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from chatweb.asgi import application

ORIGIN = [(b"origin", b"http://localhost")]


def test_chat_page_requires_login(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_renders(client, db):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_signed_in_user_sees_chat_page(client, user):
    client.force_login(user)

    response = client.get("/")

    assert response.status_code == 200
    assert b"htmx" in response.content


def test_admin_reachable_for_superuser(client, make_user):
    admin = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(admin)

    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_anonymous_websocket_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=ORIGIN)

    connected, _ = await communicator.connect()

    # Accepted, then closed with a code: a browser sees the code, not a bare 1006.
    assert connected
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4401}


@pytest.mark.django_db(transaction=True)
async def test_websocket_from_another_site_is_refused():
    headers = [(b"origin", b"https://evil.example")]
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)

    connected, _ = await communicator.connect()

    assert not connected


@override_settings(DEBUG=True)
def test_seed_demo_admin_only_when_no_users(db, django_user_model):
    call_command("seed_demo_admin")
    call_command("seed_demo_admin")

    assert list(django_user_model.objects.values_list("username", flat=True)) == ["admin"]


def test_seed_demo_admin_refused_with_debug_off(db, django_user_model):
    with pytest.raises(CommandError):
        call_command("seed_demo_admin")

    assert not django_user_model.objects.exists()

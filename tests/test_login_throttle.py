"""Password guessing against a live server started with the image's own command.

Each attack runs over real HTTP against Daphne started with the Dockerfile's CMD (so a
proxy flag there is part of what is tested), on the test database: concurrent guesses,
forged X-Forwarded-For addresses, and one address spraying many user names.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth import get_user_model

from chatweb.login_throttle import LoginThrottle
from conversations.models import Conversation, TranscriptAccess
from conversations.sharing import links
from tests.servers import Server
from tests.support import attacks
from tests.support.image import start_image_server
from tests.support.messages import say

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pw-for-tests-123"
THROTTLED = "Too many failed sign-in attempts"
WRONG = "Please enter a correct"
PROXY = "198.51.100.7"  # the address our reverse proxy appends: the real client's


NAMES = ["ming"] + [f"user{n:02d}" for n in range(30)] + [f"member{n:02d}" for n in range(25)]


@pytest.fixture(autouse=True)
def no_attempts_counted():
    """Start from zero: with REDIS_URL the counts outlive each test's server."""
    for name in NAMES:
        for address in ("127.0.0.1", PROXY, "203.0.113.66", "192.0.2.10"):
            LoginThrottle(name, address).reset()


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    """The app behind one trusted proxy, as docker-compose.yml runs it behind nginx."""
    started = start_image_server(tmp_path, TRUSTED_PROXY_COUNT="1")
    yield started
    started.stop()


@pytest.fixture
def bare_server(tmp_path) -> Iterator[Server]:
    """The app with the defaults: no proxy trusted, the socket's peer is the client."""
    started = start_image_server(tmp_path)
    yield started
    started.stop()


def csrf_token(base_url: str) -> str:
    page = httpx.get(f"{base_url}/accounts/login/")
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


async def sign_in(
    client: httpx.AsyncClient, token: str, username: str, password: str, **headers: str
) -> str:
    """POST the sign-in form; return 'in', 'throttled' or 'wrong'."""
    response = await client.post(
        "/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers=headers,
    )
    if response.status_code == 302:
        return "in"
    assert response.status_code == 200, response.text
    if THROTTLED in response.text:
        return "throttled"
    assert WRONG in response.text
    return "wrong"


def attempts(server: Server, *tries: tuple[str, str, dict]) -> list[str]:
    """Send every try at once; return each outcome in order."""
    token = csrf_token(server.url)

    async def send_all() -> list[str]:
        limits = httpx.Limits(max_connections=len(tries))
        async with httpx.AsyncClient(
            base_url=server.url, limits=limits, timeout=30, cookies={"csrftoken": token}
        ) as client:
            return await asyncio.gather(
                *(sign_in(client, token, name, password, **hdrs) for name, password, hdrs in tries)
            )

    return asyncio.run(send_all())


def one_by_one(server: Server, *tries: tuple[str, str, dict]) -> list[str]:
    return [attempts(server, attempt)[0] for attempt in tries]


def test_concurrent_wrong_passwords_are_throttled_then_the_right_one_too(user, server):
    outcomes = attempts(server, *[("ming", f"guess-{n}", {}) for n in range(40)])

    # At most LOGIN_THROTTLE_FAILURES (5) were checked. Fewer is possible: an attempt
    # counted early for the name may be counted past the address limit (20) by then.
    assert 1 <= outcomes.count("wrong") <= 5
    assert outcomes.count("throttled") == 40 - outcomes.count("wrong")
    assert attempts(server, ("ming", PASSWORD, {})) == ["throttled"]
    attacks.record(
        "40 wrong passwords for one user sent at once, then the right one",
        before="28 to 40 of 40 checked, then signed in",
        observed=f"{outcomes.count('wrong')} of 40 checked, the rest and the right one throttled",
    )


def test_forged_forwarded_addresses_are_not_trusted(user, server):
    forged = [
        ("ming", f"guess-{n}", {"X-Forwarded-For": f"203.0.113.{n}, {PROXY}"}) for n in range(20)
    ]

    outcomes = one_by_one(server, *forged)

    assert outcomes == ["wrong"] * 5 + ["throttled"] * 15
    attacks.record(
        "20 guesses, each with a forged X-Forwarded-For behind the proxy",
        before="none throttled; the forged address written to the audit log",
        observed=f"{outcomes.count('wrong')} checked, {outcomes.count('throttled')} throttled",
    )


def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(user, bare_server):
    forged = [("ming", f"guess-{n}", {"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(8)]

    outcomes = one_by_one(bare_server, *forged)

    assert outcomes == ["wrong"] * 5 + ["throttled"] * 3


def test_the_proxy_appended_address_is_what_the_audit_log_keeps(user, server):
    conversation = Conversation.objects.create(owner=user, title="Shared")
    say(conversation, "Hello?", "Hello!")
    link = links.create_link(conversation=conversation, visibility="public")

    httpx.get(f"{server.url}/s/{link.token}/", headers={"X-Forwarded-For": f"203.0.113.9, {PROXY}"})

    assert list(TranscriptAccess.objects.values_list("ip_address", flat=True)) == [PROXY]


def test_clients_behind_the_proxy_are_told_apart(user, server):
    mallory = {"X-Forwarded-For": "203.0.113.66"}
    for n in range(6):
        attempts(server, ("ming", f"guess-{n}", mallory))

    assert attempts(server, ("ming", PASSWORD, {"X-Forwarded-For": "192.0.2.10"})) == ["in"]


def test_spraying_many_user_names_from_one_address_is_throttled(server, make_user):
    names = [f"user{n:02d}" for n in range(30)]
    for name in names:
        make_user(name)

    outcomes = one_by_one(server, *[(name, "Summer2025!", {}) for name in names])

    assert outcomes == ["wrong"] * 20 + ["throttled"] * 10
    assert attempts(server, ("user00", PASSWORD, {})) == ["throttled"]
    attacks.record(
        "password spraying: one password against 30 user names from one address",
        before="all 30 checked, never throttled",
        observed=f"{outcomes.count('wrong')} checked, then the address throttled",
    )


def test_a_right_password_does_not_count_toward_the_address_limit(server, make_user):
    names = [f"member{n:02d}" for n in range(25)]
    for name in names:
        make_user(name)

    outcomes = one_by_one(server, *[(name, PASSWORD, {}) for name in names])

    assert outcomes == ["in"] * 25
    assert get_user_model().objects.filter(last_login__isnull=False).count() == 25

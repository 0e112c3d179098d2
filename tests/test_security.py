"""Security of requests and responses: headers, CSP, CSRF, websocket Origin, limits, throttling."""

from __future__ import annotations

import re

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from chatweb.asgi import application
from chatweb.login_throttle import LoginThrottle
from chatweb.security import SameOriginValidator
from conversations.models import Conversation
from conversations.pipeline.frames import MAX_FRAME_CHARS, Malformed, parse_frame

PASSWORD = "pw-for-tests-123"


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


# --- Headers -----------------------------------------------------------------------------


def test_pages_carry_a_strict_content_security_policy(client, user):
    client.force_login(user)
    response = client.get(reverse("chat"))

    policy = csp_directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    nonce = next(s for s in policy["script-src"] if s.startswith("'nonce-"))[7:-1]
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    for tag in scripts:
        assert 'src="' in tag, f"inline script: {tag}"
    assert f'nonce="{nonce}"' in html


def test_each_response_gets_a_fresh_nonce(client, user):
    client.force_login(user)
    first = csp_directives(client.get(reverse("chat")))["script-src"]
    second = csp_directives(client.get(reverse("chat")))["script-src"]
    assert first != second


@pytest.mark.parametrize(
    "name",
    [
        "chat",
        "usage",
        "shares",
        "search",
        "assistants",
        "assistant_new",
        "assistant_import",
        "prompts",
        "new_prompt",
    ],
)
def test_pages_need_no_inline_style_or_eval(client, user, name):
    """Style attributes would need style-src-attr 'unsafe-inline'; hx-on needs eval."""
    client.force_login(user)
    html = client.get(reverse(name)).content.decode()

    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\shx-on[:-]", html)
    assert not re.search(r"<style\b", html)
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html


def test_security_headers(client, db):
    response = client.get(reverse("login"))

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_https_settings_make_cookies_secure_and_send_hsts(monkeypatch):
    import importlib

    import chatweb.settings as live_settings

    monkeypatch.setenv("HTTPS", "1")
    monkeypatch.setenv("SECRET_KEY", "tests-only-secret-key-" + "0123456789" * 4)
    monkeypatch.setenv("GATEWAY", "simulator")
    try:
        fresh = importlib.reload(live_settings)
        assert fresh.SESSION_COOKIE_SECURE and fresh.CSRF_COOKIE_SECURE
        assert fresh.SECURE_HSTS_SECONDS >= 31_536_000
        assert fresh.SECURE_HSTS_INCLUDE_SUBDOMAINS
        assert fresh.SECURE_SSL_REDIRECT
        assert fresh.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    finally:
        monkeypatch.delenv("HTTPS")
        importlib.reload(live_settings)


# --- CSRF --------------------------------------------------------------------------------


@pytest.fixture
def owned(user):
    return Conversation.objects.create(owner=user, title="Mine")


def state_changing_urls(conversation) -> list[str]:
    pk = conversation.pk
    return [
        reverse("rename_conversation", args=[pk]),
        reverse("delete_conversation", args=[pk]),
        reverse("pin_conversation", args=[pk]),
        reverse("archive_conversation", args=[pk]),
        reverse("delete_archived"),
        reverse("upload_attachment"),
        reverse("delete_attachment", args=[1]),
        reverse("share_conversation", args=[pk]),
        reverse("revoke_share", args=[1]),
        reverse("update_share", args=[1]),
        reverse("continue_shared", args=["some-token"]),
        reverse("logout"),
    ]


def test_every_state_changing_request_needs_a_csrf_token(user, owned):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    for url in state_changing_urls(owned):
        assert client.post(url, {"title": "x"}).status_code == 403, url
    owned.refresh_from_db()
    assert owned.title == "Mine"


def test_login_needs_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "ming", "password": PASSWORD})
    assert response.status_code == 403
    assert client.post("/admin/login/", {"username": "ming"}).status_code == 403


def test_cross_origin_post_with_a_valid_token_is_refused(user, owned):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("chat"))
    token = client.cookies["csrftoken"].value

    response = client.post(
        reverse("rename_conversation", args=[owned.pk]),
        {"title": "pwned"},
        headers={"X-CSRFToken": token, "Origin": "http://localhost:8001"},
    )

    assert response.status_code == 403


# --- Websocket Origin --------------------------------------------------------------------


def scope(origin: str | None, host: str | None = "localhost:8000") -> dict:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if host is not None:
        headers.append((b"host", host.encode()))
    return {"type": "websocket", "headers": headers}


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://localhost:8000", "localhost:8000", True),
        ("https://localhost", "localhost", True),
        ("http://LOCALHOST:8000", "localhost:8000", True),
        ("http://localhost:8001", "localhost:8000", False),  # same host, another port
        ("http://localhost", "localhost:8000", False),
        ("null", "localhost:8000", False),  # sandboxed frame, data: page
        (None, "localhost:8000", False),
        ("", "localhost:8000", False),
        ("https://evil.example", "localhost:8000", False),
        ("http://localhost.evil.example:8000", "localhost:8000", False),
        ("file://localhost", "localhost", False),
        ("http://localhost:99999", "localhost:8000", False),
        ("http://[::1", "localhost:8000", False),
        ("http://evil.example", "evil.example", False),  # host not in ALLOWED_HOSTS
    ],
)
def test_websocket_origin_must_be_this_site(origin, host, allowed, settings):
    assert SameOriginValidator.allowed(scope(origin, host)) is allowed


def test_websocket_origin_may_be_a_trusted_origin(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com:8443"]
    assert SameOriginValidator.allowed(scope("https://chat.example.com:8443", "app:8000"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", [b"http://localhost:8001", b"null"])
async def test_cross_origin_websocket_is_refused_end_to_end(origin):
    headers = [(b"origin", origin), (b"host", b"localhost:8000")]
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)

    connected, _ = await communicator.connect()

    assert not connected


# --- Size limits -------------------------------------------------------------------------


def test_request_body_limits_are_set(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 25 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS <= 1000
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES <= 10


def test_oversized_post_body_is_refused(client, user, owned, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(user)

    response = client.post(reverse("rename_conversation", args=[owned.pk]), {"title": "x" * 5000})

    assert response.status_code == 400
    owned.refresh_from_db()
    assert owned.title == "Mine"


def test_websocket_frames_are_limited_below_daphnes_message_limit():
    import inspect

    from daphne.server import Server

    daphne_default = inspect.signature(Server).parameters["websocket_max_message_size"].default
    assert daphne_default * 4 >= MAX_FRAME_CHARS * 4  # a char is at most 4 UTF-8 bytes
    with pytest.raises(Malformed):
        parse_frame('{"action": "send", "text": "' + "x" * MAX_FRAME_CHARS + '"}')


# --- Login throttling --------------------------------------------------------------------


def login(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


THROTTLED_NAMES = ("ming", "lena", "boss", "ana", "bo", "cy", "di", "ed", "nobody")


@pytest.fixture(autouse=True)
def fresh_throttle():
    """Each test starts with no sign-in attempts counted (the cache outlives tests)."""

    def forget():
        for name in THROTTLED_NAMES:
            for address in ("127.0.0.1", "10.0.0.9", "192.0.2.1"):
                LoginThrottle(name, address).reset()

    forget()
    yield
    forget()


def test_login_is_throttled_after_repeated_failures(user, settings):
    settings.LOGIN_THROTTLE_FAILURES = 3
    client = Client()

    for _ in range(3):
        response = login(client, "ming", "wrong")
        assert response.status_code == 200
        assert "Too many" not in response.content.decode()
    response = login(client, "ming", PASSWORD)  # even the right password is refused now

    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_throttle_is_per_username_and_address(user, make_user, settings):
    settings.LOGIN_THROTTLE_FAILURES = 2
    make_user("lena")
    client = Client()
    for _ in range(2):
        login(client, "ming", "wrong")

    other_address = Client(REMOTE_ADDR="10.0.0.9")
    assert login(other_address, "ming", PASSWORD).status_code == 302
    assert login(Client(), "lena", PASSWORD).status_code == 302


def test_successful_login_clears_the_count(user, settings):
    settings.LOGIN_THROTTLE_FAILURES = 3
    client = Client()
    login(client, "ming", "wrong")
    login(client, "ming", "wrong")
    assert login(client, "ming", PASSWORD).status_code == 302

    assert LoginThrottle("ming", "127.0.0.1").attempts() == (0, 2)


def test_admin_login_is_throttled_too(make_user, settings):
    settings.LOGIN_THROTTLE_FAILURES = 2
    make_user("boss", is_staff=True)
    client = Client()
    for _ in range(2):
        client.post("/admin/login/", {"username": "boss", "password": "wrong"})

    response = client.post("/admin/login/", {"username": "boss", "password": PASSWORD})

    assert "Too many failed sign-in attempts" in response.content.decode()


def test_spraying_names_is_throttled_per_address(make_user, settings):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 4
    for name in ("ana", "bo", "cy", "di", "ed"):
        make_user(name)
    client = Client()
    for name in ("ana", "bo", "cy", "di"):
        login(client, name, "Summer2025!")

    assert "Too many" in login(client, "ed", PASSWORD).content.decode()
    assert login(Client(REMOTE_ADDR="10.0.0.9"), "ed", PASSWORD).status_code == 302


def test_throttle_admits_up_to_the_limit_then_refuses(settings):
    settings.LOGIN_THROTTLE_FAILURES = 2
    throttle = LoginThrottle("nobody", "192.0.2.1")

    assert [throttle.admit() for _ in range(3)] == [True, True, False]
    throttle.reset()
    assert throttle.admit()


def test_an_empty_form_is_not_counted(db):
    login(Client(), "ming", "")

    assert LoginThrottle("ming", "127.0.0.1").attempts() == (0, 0)

"""Bad input is refused, never a crash: every URL and every websocket frame, fuzzed.

Hypothesis sends each URL of the app (conversations/urls.py and the admin pages the app
adds) with bad values for every parameter the code reads, and the socket every action
with bad values for every field. A URL answers below 500; a frame gets an error frame or
a refusal, raises nothing, and the socket still answers the next frame.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from PIL import Image

from conversations import urls as chat_urls
from conversations.attachments import images
from conversations.models import Conversation, Message, ModelChoice
from conversations.sharing import links
from tests.support import attacks
from tests.support.chat import open_socket, send
from tests.support.waiting import wait_until_async

FUZZ = examples(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every query and form parameter a view of the app or its admin reads.
PARAMETERS = [
    *("m", "before", "model", "cursor", "group", "q", "title", "visibility", "expires"),
    *("context", "file", "created_from", "created_to", "totals", "answered_by", "state"),
    *("_changelist_filters", "o", "p", "e", "purpose", "estimated", "model_name", "all"),
    *("user__id__exact", "owner__id__exact", "archived__exact", "visibility__exact"),
    *("language", "next", "username", "password"),
]
BAD_TEXT = [
    *("abc", "1.5", "-1", "0", "", "1e5", "99999999999999999999999", "9223372036854775808"),
    *("\x00", "a\x00b", "9999-12-31", "0001-01-01", "2026-02-30", "NaN", "inf", "١٢"),
    *("1_000", " 7 ", "%", "'\"<>", "[]", "2026-01-01T00:00:00|1", "x|99999999999999999999"),
]
bad_values = (
    st.sampled_from(BAD_TEXT)
    | st.text(max_size=30)
    | st.integers(min_value=-(10**25), max_value=10**25).map(str)
)
parameters = st.dictionaries(
    st.sampled_from(PARAMETERS), bad_values, min_size=1, max_size=5
) | st.dictionaries(st.text(min_size=1, max_size=8), bad_values, max_size=2)
path_ints = st.integers(min_value=0, max_value=10**25) | st.sampled_from([1, 2, 3])
path_texts = st.sampled_from(["1", "2", "3"]) | st.text(
    st.characters(blacklist_characters="/?#", blacklist_categories=["Cs"]), min_size=1
)


def routes(patterns, prefix: str = "") -> list[tuple[str, dict]]:
    """Return (route with <converter:name> placeholders, extra kwargs) for every URL."""
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route.lstrip("^").rstrip("$"), pattern.default_args))
    return found


def admin_routes() -> list[str]:
    """The admin pages of the app's models, their own extra views included."""
    found = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        if meta.app_label not in ("conversations", "auth"):
            continue
        base = f"admin/{meta.app_label}/{meta.model_name}/"
        found += [base + route for route, _ in routes(model_admin.get_urls())]
    return found


# The chat's own URLs and the project's pages around them (chatweb/urls.py).
CHAT_ROUTES = [
    *(route for route, _ in routes(chat_urls.urlpatterns)),
    *("accounts/login/", "accounts/logout/", "i18n/setlang/", "jsi18n/"),
]
ADMIN_ROUTES = admin_routes()


def path_of(route: str, data) -> str:
    """Fill the route's placeholders with drawn values: ints for <int:…>, text otherwise."""

    def fill(match: re.Match) -> str:
        return str(data.draw(path_ints if match.group(1) == "int" else path_texts))

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route)


@pytest.fixture
def owned(user, other_user, settings, tmp_path) -> dict:
    """Rows of both users, so requests reach the code behind the ownership checks."""
    settings.MEDIA_ROOT = tmp_path / "media"
    model, _ = ModelChoice.objects.get_or_create(upstream_id="sim-chat", defaults={"label": "S"})
    questions = {}
    for owner in (other_user, user):
        conversation = Conversation.objects.create(owner=owner, title="t")
        questions[owner] = Message.objects.create(conversation=conversation, role="user", text="q")
        Message.objects.create(
            conversation=conversation, parent=questions[owner], role="assistant", text="a"
        )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    image = images.store_upload(
        user=user, uploaded_file=SimpleUploadedFile("a.png", buffer.getvalue())
    )
    image.message = questions[user]
    image.save(update_fields=["message"])
    link = links.create_link(conversation=conversation, visibility="team")
    return {
        "conversation": conversation.pk,
        "question": questions[user].pk,
        "their_conversation": questions[other_user].conversation_id,
        "their_question": questions[other_user].pk,
        "attachment": image.pk,
        "link": link.pk,
        "token": link.token,
        "model": model.pk,
        "user": user.pk,
    }


# Which of `owned`'s rows each route's placeholders name, in order, by the route's start.
REAL_ROWS = [
    ("s/", ["token", "attachment"]),
    ("attachments/", ["attachment"]),
    ("shares/", ["link"]),
    ("admin/conversations/reviewedconversation/", ["conversation", "attachment"]),
    ("admin/conversations/modelchoice/", ["model"]),
    ("admin/auth/user/", ["user"]),
    ("", ["conversation"]),
]


def real_path(route: str, owned: dict) -> str:
    names = iter(next(names for start, names in REAL_ROWS if route.startswith(start)))
    return "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda _: str(owned[next(names, "user")]), route)


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def request_survives(client: Client, method: str, path: str, params: dict) -> None:
    # Each request is rolled back: a fuzzed POST may delete the very user signed in.
    with transaction.atomic():
        response = getattr(client, method)(path, params)
        transaction.set_rollback(True)
    assert response.status_code < 500, (method, path, params, response.status_code)


def sweep(client: Client, route: str, owned: dict) -> None:
    """Send each listed bad value as every parameter at once, to real rows and in the path."""
    for value in BAD_TEXT:
        bad_path = "/" + re.sub(r"<(?:(\w+):)?\w+>", quote(value) or "1", route)
        for path in {real_path(route, owned), bad_path}:
            for method in ("get", "post"):
                request_survives(client, method, path, dict.fromkeys(PARAMETERS, value))


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_every_chat_url_answers_each_bad_value_below_500(owned, user, route):
    client = Client()  # raises whatever a view raises, so a crash fails with its traceback
    client.force_login(user)

    sweep(client, route, owned)


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_every_admin_page_of_the_app_answers_each_bad_value_below_500(owned, superuser, route):
    client = Client()
    client.force_login(superuser)

    sweep(client, route, owned)


@pytest.mark.parametrize("route", CHAT_ROUTES)
@FUZZ
@given(method=st.sampled_from(["get", "post"]), params=parameters, data=st.data())
def test_every_chat_url_answers_fuzzed_values_below_500(owned, user, route, method, params, data):
    client = Client()
    client.force_login(user)

    request_survives(client, method, path_of(route, data), params)


@pytest.mark.parametrize("route", ADMIN_ROUTES)
@FUZZ
@given(method=st.sampled_from(["get", "post"]), params=parameters, data=st.data())
def test_every_admin_page_of_the_app_answers_fuzzed_values_below_500(
    owned, superuser, route, method, params, data
):
    client = Client()
    client.force_login(superuser)

    request_survives(client, method, path_of(route, data), params)


@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "1e5", "99999999999999999999999", "١٢"])
def test_composer_options_with_a_bad_model_is_400(client, user, value):
    client.force_login(user)

    response = client.get("/composer/options/", {"model": value})
    assert response.status_code == 400
    assert "This address is not right" in response.content.decode()
    attacks.record(
        "GET /composer/options/ with model=abc, 1.5, -1, 1e5, a huge number, Arabic digits",
        before="HTTP 500 with a traceback",
        observed=f"HTTP {response.status_code} with the bad-request page",
    )


@pytest.mark.parametrize("name", ["m", "before"])
def test_transcript_with_a_bad_message_id_is_400(client, user, name):
    client.force_login(user)
    conversation = Conversation.objects.create(owner=user)
    path = f"/c/{conversation.pk}/" + ("earlier/" if name == "before" else "")

    assert client.get(path, {name: "1.5"}).status_code == 400


# --- The websocket ------------------------------------------------------------------------

ACTIONS = ["watch", "send", "stop", "regenerate", "retry", "edit", "branch"]
FIELDS = [
    *("action", "conversation", "message", "model", "text", "instructions", "attachments"),
    *("effort", "summary", "web_search"),
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(BAD_TEXT)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def frames(real_ids: list[str]):
    """Frames of every action; ids are sometimes those of real rows, the user's or not."""
    values = json_values | st.sampled_from(real_ids) | st.lists(st.sampled_from(real_ids))
    return st.fixed_dictionaries(
        {"action": st.sampled_from(ACTIONS) | json_values},
        optional={field: values for field in FIELDS[1:]},
    )


# A conversation id no one has: watching it is always answered with a toast.
PROBE = {"action": "watch", "conversation": "9223372036854775807"}
GONE = "This conversation does not exist."
DATABASE_LOST = "The server lost its database"


@pytest.mark.django_db(transaction=True)
@examples(FUZZ, max_examples=150)
@given(data=st.data())
async def test_every_frame_with_bad_fields_is_refused_and_the_socket_lives_on(
    gateway, owned, user, data
):
    frame = data.draw(frames(sorted({str(pk) for name, pk in owned.items() if name != "token"})))
    socket = await open_socket(user)
    try:
        await socket.send_to(text_data=json.dumps(frame))
        await send(socket, **PROBE)
        received = []
        while not any(GONE in text for text in received):
            received.append(await socket.receive_from(timeout=10))
        assert not any(DATABASE_LOST in text for text in received), frame
    finally:
        await socket.disconnect()
        await settle()


@sync_to_async
def streaming_answers() -> int:
    return Message.objects.filter(status=Message.Status.STREAMING).count()


async def settle() -> None:
    """Wait for any turn a fuzzed `send` started, so the next example starts clean."""

    async def none_streaming() -> bool:
        return not await streaming_answers()

    await wait_until_async(none_streaming, what="the end of the fuzzed turns")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("value", [1.5, "1.5", "\u0661", True])
async def test_a_fractional_or_foreign_id_in_a_frame_is_refused(catalogue, user, value):
    """`int(1.5)` once made a "stop" of message 1.5 stop message 1."""
    socket = await open_socket(user)

    await send(socket, action="stop", message=value)

    assert "That request could not be read." in await socket.receive_from(timeout=5)
    await socket.disconnect()

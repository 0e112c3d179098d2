"""A user's custom instructions: saved on their page, sent before each conversation's own
instructions, switched off per conversation, and kept current in every process."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from conversations.models import Conversation, UserPreference
from conversations.pipeline import frames, quicksend, starts
from conversations.pipeline.plans import TurnOptions
from tests.support.chat import final_answer, open_socket, receive_until, send
from tests.support.direct_turns import finish, model

ABOUT = "I maintain the billing service; we use Django."
STYLE = "Answer in Chinese, with short code samples."
PERSONAL = (
    f"What the user wants you to know about them:\n{ABOUT}\n\n"
    f"How the user wants you to answer:\n{STYLE}"
)


def set_custom_instructions(user, about=ABOUT, style=STYLE) -> None:
    UserPreference.objects.update_or_create(
        user=user, defaults={"about_me": about, "answer_style": style}
    )


def send_through(path, user, conversation_id=None, *, starting=False, **options):
    """Send through `path`; a user's first send (`starting`) takes the dispatcher, since
    the quick path leaves first turns to the ORM path."""
    if starting:
        path = quicksend.prepare_send
    return path(
        user=user,
        conversation_id=conversation_id,
        text="How do I add an index?",
        model_id=model().pk,
        instructions=None,
        worker_channel="worker-1",
        options=TurnOptions(**options),
    )


# --- The page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_saves_both_answers_and_says_so(client, user):
    client.force_login(user)

    response = client.post(
        reverse("custom_instructions"), {"about_me": ABOUT, "answer_style": STYLE}, follow=True
    )

    assert "Saved." in response.text
    assert ABOUT in response.text  # the form shows what was saved
    saved = UserPreference.objects.get(user=user)
    assert (saved.about_me, saved.answer_style) == (ABOUT, STYLE)


@pytest.mark.django_db
def test_an_answer_over_the_limit_is_refused_and_the_old_ones_kept(client, user):
    set_custom_instructions(user)
    client.force_login(user)

    response = client.post(
        reverse("custom_instructions"), {"about_me": "x" * 1501, "answer_style": "Short."}
    )

    assert response.status_code == 200
    assert "at most 1500 characters" in response.text
    assert "x" * 1501 in response.text  # what was typed stays in the form
    saved = UserPreference.objects.get(user=user)
    assert (saved.about_me, saved.answer_style) == (ABOUT, STYLE)


@pytest.mark.django_db
def test_the_page_needs_a_signed_in_user(client):
    response = client.get(reverse("custom_instructions"))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_the_language_choice_survives_saving_the_instructions(client, user):
    UserPreference.objects.create(user=user, language="zh-hans")
    client.force_login(user)

    client.post(reverse("custom_instructions"), {"about_me": ABOUT, "answer_style": ""})

    assert UserPreference.objects.get(user=user).language == "zh-hans"


# --- What a turn sends ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [quicksend.quick_send, starts.prepare_send])
def test_they_go_before_the_conversations_own_instructions(user, catalogue, path):
    finish(send_through(path, user, starting=True).plan)
    set_custom_instructions(user)
    conversation = Conversation.objects.create(owner=user, instructions="Be brief.")

    result = send_through(path, user, conversation.pk)

    assert result.plan.instructions == f"{PERSONAL}\n\nBe brief."


@pytest.mark.django_db
@pytest.mark.parametrize("path", [quicksend.quick_send, starts.prepare_send])
def test_switched_off_for_a_conversation_they_stay_off(user, catalogue, path):
    finish(send_through(path, user, starting=True).plan)
    set_custom_instructions(user, style="")
    first = send_through(path, user, custom_instructions=False)
    finish(first.plan)

    later = send_through(path, user, first.conversation.pk)

    assert first.plan.instructions == later.plan.instructions == ""
    assert Conversation.objects.get(pk=first.conversation.pk).custom_instructions is False


@pytest.mark.django_db
def test_an_edit_reaches_the_next_turn(user, catalogue):
    set_custom_instructions(user)
    first = send_through(quicksend.prepare_send, user)
    finish(first.plan)

    set_custom_instructions(user, about="", style="Answer in English.")
    later = send_through(quicksend.prepare_send, user, first.conversation.pk)

    assert later.plan.instructions == "How the user wants you to answer:\nAnswer in English."


@pytest.mark.django_db
def test_without_custom_instructions_nothing_is_added(user, catalogue):
    conversation = Conversation.objects.create(owner=user, instructions="Be brief.")

    result = send_through(quicksend.prepare_send, user, conversation.pk)

    assert result.plan.instructions == "Be brief."


# --- Over the socket -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_composers_switch_reaches_the_gateway(gateway, user):
    await sync_to_async(set_custom_instructions)(user)
    socket = await open_socket(user)

    await send(
        socket,
        action="send",
        conversation="",
        text="Hi",
        instructions="Be brief.",
        custom_instructions=["off", "on"],
    )
    await receive_until(socket, final_answer)
    await send(
        socket,
        action="send",
        conversation=str(
            await sync_to_async(Conversation.objects.values_list("pk", flat=True).get)()
        ),
        text="Again",
        instructions="Be brief.",
        custom_instructions="off",
    )
    await receive_until(socket, final_answer)

    first, second = gateway.requests.streamed()
    assert first["instructions"] == f"{PERSONAL}\n\nBe brief."
    assert second["instructions"] == "Be brief."
    await socket.disconnect()


def test_the_switch_is_read_from_its_last_value():
    assert frames.switch({"custom_instructions": ["off", "on"]}, "custom_instructions") is True
    assert frames.switch({"custom_instructions": "off"}, "custom_instructions") is False
    assert frames.switch({}, "custom_instructions") is None
    with pytest.raises(frames.Malformed):
        frames.switch({"custom_instructions": ["yes"]}, "custom_instructions")

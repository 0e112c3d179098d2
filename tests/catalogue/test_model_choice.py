"""A model an admin turns off while a page is open: the turn is refused, never re-routed."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, ModelChoice
from conversations.pipeline import admission, starts
from tests.support.chat import open_socket, receive_until, send


def model(upstream_id: str = "sim-chat") -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


def send_turn(user, model_id: int, conversation_id: int | None = None):
    return starts.prepare_send(
        user=user,
        conversation_id=conversation_id,
        text="Hello",
        model_id=model_id,
        instructions=None,
        worker_channel="worker-1",
    )


@pytest.mark.django_db
def test_send_with_a_model_turned_off_is_refused_by_name(user, catalogue):
    ModelChoice.objects.filter(upstream_id="sim-chat").update(enabled=False)

    with pytest.raises(admission.ModelUnavailable) as refused:
        send_turn(user, model().pk)

    assert refused.value.user_message == (
        "Sim Chat was turned off by an administrator; pick another model."
    )
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_with_a_deleted_model_is_refused(user, catalogue):
    gone = model().pk
    ModelChoice.objects.filter(pk=gone).delete()

    with pytest.raises(admission.ModelUnavailable):
        send_turn(user, gone)


@pytest.mark.django_db
def test_conversation_on_a_model_turned_off_keeps_its_question_unsent(user, catalogue):
    conversation_id = send_turn(user, model().pk).conversation.pk
    Message.objects.update(status=Message.Status.COMPLETE)
    ModelChoice.objects.filter(upstream_id="sim-chat").update(enabled=False)

    with pytest.raises(admission.ModelUnavailable):
        send_turn(user, model().pk, conversation_id)

    assert Conversation.objects.get().model == model()
    assert Message.objects.count() == 2


@sync_to_async
def turn_off(upstream_id: str) -> int:
    chosen = model(upstream_id)
    chosen.enabled = False
    chosen.save()
    return chosen.pk


@sync_to_async
def message_count() -> int:
    return Message.objects.count()


@pytest.mark.django_db(transaction=True)
async def test_socket_refusal_names_the_model_and_refreshes_the_picker(gateway, user):
    socket = await open_socket(user)
    stale = await turn_off("sim-chat")

    await send(socket, action="send", conversation="", text="Hello", model=str(stale))
    frames = await receive_until(socket, lambda frame: "composer-error" in frame)

    assert "Sim Chat was turned off by an administrator" in frames[-1]
    picker = frames[-1][frames[-1].index('<select id="composer-model"') :]
    assert 'hx-swap-oob="true"' in picker.split(">")[0]
    assert "Sim Mini" in picker and "Sim Chat" not in picker
    assert await message_count() == 0
    await socket.disconnect()

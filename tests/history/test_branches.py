"""Edit and regenerate make branches; the conversation remembers the one on show."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message
from conversations.pipeline import turns
from tests.support.turns import ask, finished, model_id

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def branch_texts(conversation_id: int) -> list[str]:
    return [m.text for m in Conversation.objects.get(pk=conversation_id).visible_branch()]


async def test_regenerate_adds_a_sibling_answer_continuing_from_the_turn_before(gateway, user):
    first, first_answer = await ask(user, "My name is Ming.")
    _, second_answer = await ask(user, "What is my name?", conversation_id=first.conversation.pk)

    plan = await turns.regenerate(user=user, message_id=second_answer.pk)
    again = await finished(plan.answer_id)

    assert again.parent_id == second_answer.parent_id
    assert again.previous_response_id == first_answer.response_id
    assert "Ming" in again.text
    texts = await branch_texts(first.conversation.pk)
    assert texts[-1] == again.text


async def test_edit_asks_again_on_a_new_branch_and_keeps_the_old_one(gateway, user):
    first, _ = await ask(user, "My name is Ming.")
    conversation = first.conversation.pk
    _, old_answer = await ask(user, "What is 2+2?", conversation_id=conversation)

    plan = await turns.edit(user=user, message_id=old_answer.parent_id, text="What is 3*3?")
    await finished(plan.answer_id)

    texts = await branch_texts(conversation)
    assert texts[2] == "What is 3*3?"
    assert "9" in texts[3]
    await turns.switch_branch(user=user, message_id=old_answer.parent_id)
    assert (await branch_texts(conversation))[2] == "What is 2+2?"


async def test_switched_branch_is_remembered_and_continued(gateway, user):
    first, _ = await ask(user, "Hello")
    conversation = first.conversation.pk
    _, answer = await ask(user, "Tell me a joke", conversation_id=conversation)
    plan = await turns.edit(user=user, message_id=answer.parent_id, text="Tell me a fact")
    await finished(plan.answer_id)

    await turns.switch_branch(user=user, message_id=answer.parent_id)
    _, next_answer = await ask(user, "Another one", conversation_id=conversation)

    question = await sync_to_async(Message.objects.get)(pk=next_answer.parent_id)
    assert question.parent_id == answer.pk
    texts = await branch_texts(conversation)
    assert texts[2] == "Tell me a joke"
    assert texts[-2] == "Another one"


async def test_another_users_message_cannot_be_edited_or_regenerated(gateway, user, other_user):
    _, answer = await ask(other_user, "Secret")

    with pytest.raises(turns.Refused):
        await turns.regenerate(user=user, message_id=answer.pk)
    with pytest.raises(turns.Refused):
        await turns.edit(user=user, message_id=answer.parent_id, text="Mine now")
    with pytest.raises(turns.Refused):
        await turns.switch_branch(user=user, message_id=answer.pk)


async def test_regenerate_with_another_model_and_effort(gateway, user):
    from conversations.pipeline.plans import TurnOptions

    _, answer = await ask(user, "Why is the sky blue?")

    plan = await turns.regenerate(
        user=user,
        message_id=answer.pk,
        model_id=await model_id("sim-reasoner"),
        options=TurnOptions(effort="low"),
    )
    again = await finished(plan.answer_id)

    assert again.model_name == "sim-reasoner"
    assert again.reasoning_effort == "low"

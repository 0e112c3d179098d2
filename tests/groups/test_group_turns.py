"""Turns in a group conversation, without a socket: who pays, what the model reads,
when it answers, and what a member, a removed member and a stranger may do."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group

from conversations.groups import membership
from conversations.history import reads
from conversations.models import (
    AnswerMode,
    Conversation,
    MembershipEvent,
    Message,
    ModelChoice,
    QuotaCounter,
    UsageRecord,
)
from conversations.pipeline import turns
from tests.support.simulator import RequestLog
from tests.support.turns import ask, finished

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def group_of(owner, *members, mode: str = AnswerMode.AUTO) -> Conversation:
    """A conversation of `owner` with one answered turn, and `members` invited."""
    conversation = Conversation.objects.create(owner=owner, title="Plan", answer_mode=mode)
    membership.invite(conversation, owner, members)
    conversation.refresh_from_db()
    return conversation


@sync_to_async
def used_by(user) -> int:
    return sum(QuotaCounter.objects.filter(user=user, period="day").values_list("used", flat=True))


@sync_to_async
def refresh(instance):
    instance.refresh_from_db()
    return instance


async def test_the_member_who_asks_pays_and_is_named_to_the_model(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei", first_name="Mei", last_name="Lin")
    conversation = await group_of(user, mei)
    log = RequestLog(gateway.app)

    result, answer = await ask(
        mei, "What should we call the project?", conversation_id=conversation.pk
    )

    assert answer.status == "complete"
    assert await used_by(mei) > 0 and await used_by(user) == 0
    record = await sync_to_async(UsageRecord.objects.get)(message=answer)
    assert record.user_id == mei.pk
    body = log.streamed()[-1]
    question = body["input"][-1]["content"]
    text = question if isinstance(question, str) else question[0]["text"]
    assert text == "Mei Lin: What should we call the project?"
    assert "group conversation between Mei Lin, ming" in body["instructions"]
    saved = await sync_to_async(Message.objects.get)(pk=result.plan.user_message_id)
    assert saved.author_id == mei.pk


async def test_with_three_people_the_model_waits_to_be_mentioned(gateway, user, make_user):
    mei, li = await sync_to_async(make_user)("mei"), await sync_to_async(make_user)("li")
    conversation = await group_of(user, mei, li)
    log = RequestLog(gateway.app)

    talk = await turns.send(user=mei, conversation_id=conversation.pk, text="Lunch at noon?")
    reply = await turns.send(user=li, conversation_id=conversation.pk, text="Yes, noon works")

    assert talk.plan is None and reply.plan is None
    assert log.streamed() == []
    assert await used_by(mei) == 0

    _, answer = await ask(user, "@model which restaurant is near?", conversation_id=conversation.pk)
    assert answer.status == "complete"
    sent = [
        item["content"] if isinstance(item["content"], str) else item["content"][0]["text"]
        for item in log.streamed()[-1]["input"]
        if item.get("role") == "user"
    ]
    # Not continued upstream: the words said in between must reach the model too.
    assert sent[-3:] == [
        "mei: Lunch at noon?",
        "li: Yes, noon works",
        "ming: @model which restaurant is near?",
    ]


async def test_a_mention_by_model_name_or_every_message_mode_asks_the_model(
    gateway, user, make_user
):
    mei, li = await sync_to_async(make_user)("mei"), await sync_to_async(make_user)("li")
    conversation = await group_of(user, mei, li)
    model = await sync_to_async(ModelChoice.objects.get)(upstream_id="sim-chat")
    await sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(model=model)

    by_name = await turns.send(
        user=mei, conversation_id=conversation.pk, text=f"@{model.label.upper()} hi"
    )
    assert by_name.plan is not None
    await finished(by_name.plan.answer_id)

    await sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(
        answer_mode=AnswerMode.EVERY
    )
    every = await turns.send(user=li, conversation_id=conversation.pk, text="and you?")
    assert every.plan is not None
    await finished(every.plan.answer_id)


async def test_a_member_may_not_change_the_instructions(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)

    with pytest.raises(turns.Refused, match="owner"):
        await turns.send(
            user=mei, conversation_id=conversation.pk, text="hi", instructions="Talk like a pirate"
        )
    # The same instructions as now (the page sends the box's text) are fine.
    result, _ = await ask(mei, "hi", conversation_id=conversation.pk)
    assert (await refresh(conversation)).instructions == ""
    assert result.plan is not None


async def test_a_stranger_and_a_removed_member_cannot_send_or_stop(gateway, user, make_user):
    mei, stranger = await sync_to_async(make_user)("mei"), await sync_to_async(make_user)("x")
    conversation = await group_of(user, mei)
    result = await turns.send(user=user, conversation_id=conversation.pk, text="Hello")

    assert not await turns.stop(user=stranger, message_id=result.plan.answer_id)
    await sync_to_async(membership.remove)(conversation, user, mei.pk)
    assert not await turns.stop(user=mei, message_id=result.plan.answer_id)
    await finished(result.plan.answer_id)
    for outsider in (stranger, mei):
        with pytest.raises(turns.Refused, match="does not exist"):
            await turns.send(user=outsider, conversation_id=conversation.pk, text="let me in")
        with pytest.raises(turns.Refused):
            await turns.regenerate(user=outsider, message_id=result.plan.answer_id)


async def test_any_member_may_stop_and_regenerate_an_answer(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)
    result = await turns.send(
        user=user, conversation_id=conversation.pk, text="Hello", model_id=None
    )
    assert await turns.stop(user=mei, message_id=result.plan.answer_id)
    stopped = await finished(result.plan.answer_id)
    assert stopped.status in ("cancelled", "complete")

    plan = await turns.regenerate(user=mei, message_id=result.plan.answer_id)
    again = await finished(plan.answer_id)
    assert again.status == "complete"
    assert await used_by(mei) > 0


async def test_a_member_without_the_groups_model_answers_on_their_own_with_a_notice(
    gateway, user, make_user
):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)

    @sync_to_async
    def restrict() -> ModelChoice:
        staff_only = Group.objects.create(name="Staff models")
        user.groups.add(staff_only)
        model = ModelChoice.objects.get(upstream_id="sim-reasoner")
        model.groups.add(staff_only)
        Conversation.objects.filter(pk=conversation.pk).update(model=model)
        return model

    model = await restrict()
    result, answer = await ask(mei, "hi", conversation_id=conversation.pk)

    assert answer.model_name != model.upstream_id
    assert any("not available to you" in notice for notice in result.plan.notices)
    assert (await refresh(conversation)).model_id == model.pk  # the group's model stays


@sync_to_async
def delete_user(user) -> None:
    user.delete()


async def test_a_deleted_owners_group_passes_to_a_member_with_every_message(
    gateway, user, make_user
):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)
    _, answer = await ask(user, "Remember this", conversation_id=conversation.pk)

    await delete_user(user)

    kept = await refresh(conversation)
    assert kept.owner_id == mei.pk and not kept.is_group
    texts = await sync_to_async(list)(kept.messages.values_list("text", flat=True))
    assert "Remember this" in texts and answer.text in texts
    kinds = await sync_to_async(list)(
        MembershipEvent.objects.filter(conversation_ref=conversation.pk).values_list(
            "kind", flat=True
        )
    )
    assert "departed" in kinds


async def test_a_deleted_owners_conversation_without_active_members_goes(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)
    mei.is_active = False
    await sync_to_async(mei.save)()

    await delete_user(user)

    assert not await sync_to_async(Conversation.objects.filter(pk=conversation.pk).exists)()


def test_inviting_an_inactive_user_is_refused_by_name(user, make_user):
    gone = make_user("gone", is_active=False)
    conversation = Conversation.objects.create(owner=user)

    with pytest.raises(membership.MembershipError, match="gone cannot join"):
        membership.invite(conversation, user, [gone])

    conversation.refresh_from_db()
    assert not conversation.is_group
    assert not MembershipEvent.objects.exists()


def test_invitations_removals_and_the_end_are_in_the_audit_log(user, make_user):
    mei, li = make_user("mei"), make_user("li")
    team = Group.objects.create(name="Team")
    team.user_set.add(mei, li, make_user("off", is_active=False))
    conversation = Conversation.objects.create(owner=user, title="Plan")

    membership.invite_group(conversation, user, team)
    membership.remove(conversation, user, li.pk)
    membership.leave(conversation, mei)

    conversation.refresh_from_db()
    assert not conversation.is_group
    rows = list(
        MembershipEvent.objects.order_by("pk").values_list("kind", "actor_name", "member_name")
    )
    assert rows == [
        ("invited", "ming", "mei"),
        ("invited", "ming", "li"),
        ("removed", "ming", "li"),
        ("left", "mei", "mei"),
    ]


async def test_a_member_who_left_keeps_their_name_on_the_page_and_for_the_model(
    gateway, replaying, user, make_user
):
    mei = await sync_to_async(make_user)("mei", first_name="Mei", last_name="Lin")
    li = await sync_to_async(make_user)("li")
    conversation = await group_of(user, mei, li, mode=AnswerMode.EVERY)
    await ask(mei, "Ship on Friday", conversation_id=conversation.pk)
    await sync_to_async(membership.leave)(conversation, mei)
    log = RequestLog(gateway.app)

    await ask(li, "Agreed", conversation_id=conversation.pk)

    view = await sync_to_async(reads.transcript)(user, conversation.pk)
    assert [v.author.name for v in view.shown if v.author] == ["Mei Lin", "li"]
    body = log.streamed()[-1]
    spoken = [
        item["content"] if isinstance(item["content"], str) else item["content"][0]["text"]
        for item in body.get("input", [])
        if item.get("role") == "user"
    ]
    # Replayed (the catalogue says so): her words go again, under her name.
    assert spoken[-2:] == ["Mei Lin: Ship on Friday", "li: Agreed"]


async def test_a_group_turn_never_offers_the_tool_that_reads_the_senders_own_chats(
    gateway, user, make_user
):
    mei = await sync_to_async(make_user)("mei")
    conversation = await group_of(user, mei)

    @sync_to_async
    def with_tools() -> None:
        ModelChoice.objects.filter(upstream_id="sim-chat").update(
            supports_function_tools=True, tools=["search_conversations", "calculate"]
        )
        model = ModelChoice.objects.get(upstream_id="sim-chat")
        Conversation.objects.filter(pk=conversation.pk).update(model=model)

    await with_tools()
    group_turn = await turns.send(user=mei, conversation_id=conversation.pk, text="hi")
    alone = await turns.send(
        user=mei,
        conversation_id=None,
        text="hi",
        model_id=group_turn.plan.model_choice_id,
    )

    assert group_turn.plan.tools == ("calculate",)
    assert alone.plan.tools == ("search_conversations", "calculate")
    for result in (group_turn, alone):
        await finished(result.plan.answer_id)

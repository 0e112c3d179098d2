"""The everyday send in three statements saves what the ORM path saves, and hands every
other case to it with nothing of its own left behind."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from conversations.models import Conversation, Message, Quota, QuotaCounter, RunningAnswer
from conversations.pipeline import admission, quicksend, starts
from conversations.pipeline.plans import TurnOptions
from conversations.usage import quotas
from tests.support.direct_turns import (
    SEND_STATEMENTS,
    conversation_with_turns,
    model,
    send,
    send_counting_statements,
)

pytestmark = pytest.mark.django_db

# What differs between two saves of the same turn: where and when they were saved.
PLACES = {"id", "conversation", "parent", "message", "created_at", "updated_at"}
PLACES |= {"started_at", "heartbeat_at"}


def saved(result) -> dict:
    """Return what a send saved, without its ids and times."""
    question = Message.objects.get(pk=result.plan.user_message_id)
    answer = Message.objects.get(pk=result.plan.answer_id)
    conversation = Conversation.objects.get(pk=result.conversation.pk)
    return {
        "question": model_to_dict(question, exclude=PLACES),
        "answer": model_to_dict(answer, exclude=PLACES),
        "running": model_to_dict(RunningAnswer.objects.get(pk=answer.pk), exclude=PLACES),
        "leaf is the answer": conversation.current_leaf_id == answer.pk,
        "model": conversation.model_id,
        "instructions": conversation.instructions,
        "asked below": question.parent.text if question.parent_id else None,
        "answers": answer.parent_id == question.pk,
    }


def without(values: dict, keys: set) -> dict:
    return {key: value for key, value in values.items() if key not in keys}


def orm_send(user, conversation_id, **turn):
    return starts.prepare_send(
        user=user,
        conversation_id=conversation_id,
        worker_channel="worker-1",
        model_id=model().pk,
        options=TurnOptions(),
        **turn,
    )


def quick_send(user, conversation_id, **turn):
    return quicksend.quick_send(
        user=user,
        conversation_id=conversation_id,
        worker_channel="worker-1",
        model_id=model().pk,
        options=TurnOptions(),
        **turn,
    )


def test_a_send_saves_the_same_rows_and_plan_as_the_orm_path(user, catalogue):
    Quota.objects.create(user=user, tokens_per_day=1_000_000)
    first, second = conversation_with_turns(user), conversation_with_turns(user)
    turn = {"text": "Wie geht's? 你好", "instructions": "Be brief."}

    through_orm = orm_send(user, first, **turn)
    quick = quick_send(user, second, **turn)

    assert saved(quick) == saved(through_orm)
    ignored = {"answer_id", "user_message_id", "conversation_id", "previous_id", "reservation"}
    assert without(asdict(quick.plan), ignored) == without(asdict(through_orm.plan), ignored)
    assert quick.plan.reservation.amount == through_orm.plan.reservation.amount
    assert quick.plan.previous_id and through_orm.plan.previous_id
    assert [(m.html, m.model_label) for m in quick.messages] == [
        (m.html, m.model_label) for m in through_orm.messages
    ]


def test_a_new_conversation_is_saved_the_same_way_in_as_few_statements(user, catalogue):
    conversation_with_turns(user, turns=1)  # the gate and the counters exist now

    result, statements = send_counting_statements(user, None)
    through_orm = orm_send(user, None, text="One more", instructions=None)

    assert len(statements) == SEND_STATEMENTS, "\n".join(statements)
    assert result.created and result.plan.needs_title
    assert result.plan.first_user_text == "One more"
    assert saved(result) == saved(through_orm)
    assert Conversation.objects.get(pk=result.conversation.pk).owner == user


def test_a_quota_with_room_only_for_a_shorter_answer_is_held_by_the_orm_path(user, catalogue):
    conversation_id = conversation_with_turns(user)
    used = QuotaCounter.objects.get(user=user, period="day").used
    Quota.objects.create(user=user, tokens_per_day=used + 1_000)

    result = send(user, conversation_id, text="Short, please")

    assert result.plan.max_output_tokens < model().max_output_tokens
    day = QuotaCounter.objects.get(user=user, period="day")
    assert day.reserved == result.plan.reservation.amount  # the quick write left nothing
    assert Message.objects.filter(conversation_id=conversation_id).count() == 8


def test_a_quota_with_no_room_refuses_and_saves_nothing(user, catalogue):
    conversation_id = conversation_with_turns(user)
    used = QuotaCounter.objects.get(user=user, period="day").used
    Quota.objects.create(user=user, tokens_per_day=used + 5)

    with pytest.raises(admission.Refused, match="not enough for this message"):
        send(user, conversation_id, text="Anything?")

    assert Message.objects.filter(conversation_id=conversation_id).count() == 6
    assert QuotaCounter.objects.get(user=user, period="day").reserved == 0


def test_a_counter_id_gone_stale_holds_on_the_right_row(user, catalogue):
    conversation_id = conversation_with_turns(user)
    for key in quotas.known_ids:
        quotas.known_ids[key] += 1000  # rows this process no longer has right

    result = send(user, conversation_id, text="Still counted?")

    held = QuotaCounter.objects.filter(user=user).values_list("reserved", flat=True)
    assert list(held) == [result.plan.reservation.amount] * 2


def test_another_users_conversation_is_refused_without_a_trace(user, other_user, catalogue):
    theirs = conversation_with_turns(other_user)
    conversation_with_turns(user, turns=1)

    with pytest.raises(admission.Refused, match="does not exist"):
        send(user, theirs, text="Let me in")

    assert Message.objects.filter(conversation_id=theirs).count() == 6


def test_an_answer_streaming_in_the_conversation_refuses_the_next_question(user, catalogue):
    conversation_id = conversation_with_turns(user)
    send(user, conversation_id, text="First")

    with pytest.raises(admission.Refused, match="still being written"):
        quick_send(user, conversation_id, text="Second", instructions=None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's one-statement write")
def test_on_postgresql_the_write_is_one_statement(user, catalogue):
    conversation_id = conversation_with_turns(user)

    _result, statements = send_counting_statements(user, conversation_id)

    writes = [sql for sql in statements if sql.startswith("WITH part0")]
    assert len(writes) == 1
    assert writes[0].count("INSERT INTO") == 3


def test_a_users_first_send_costs_what_the_orm_path_costs(make_user, user, other_user, catalogue):
    """A first send (no gate, no counters read in this process) wastes no try: the bench's
    burst of 200 first turns paid for both paths before."""
    send(make_user("warms-the-process-caches"))
    turn = {
        "conversation_id": None,
        "text": "Hello",
        "model_id": model().pk,
        "instructions": None,
        "worker_channel": "worker-1",
    }
    with CaptureQueriesContext(connection) as through_orm:
        starts.prepare_send(user=other_user, **turn)
    with CaptureQueriesContext(connection) as dispatched:
        quicksend.prepare_send(user=user, **turn)

    orm = [query["sql"] for query in through_orm.captured_queries]
    sent = [query["sql"] for query in dispatched.captured_queries]
    assert len(sent) == len(orm), "\n".join(sent)

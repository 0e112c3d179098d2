"""What a turn costs the database, and that the shortcuts taken to save it show the same.

A busy server starts and finishes turns for every user at once, and every statement of
a turn is paid for on the one core the process runs on. The sending tab draws the new
turn from the rows the send returns, the final bubble from what the final write read,
and the title is saved with its charge: each must look exactly like a fresh read.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.assistants.library import record_version
from conversations.gateway.response import Usage
from conversations.history import reads
from conversations.models import (
    Assistant,
    Conversation,
    Message,
    ModelChoice,
    Quota,
    QuotaCounter,
    UsageRecord,
)
from conversations.pipeline import admission, fragments, starts, titles
from conversations.usage import quotas
from tests.support.direct_turns import (
    REGENERATE_STATEMENTS,
    SEND_STATEMENTS,
    conversation_with_turns,
    finish,
    image,
    model,
    send,
    send_counting_statements,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def shown_by_other_tab(user, result) -> str:
    """What a tab that learns of the turn from the channel layer draws (it reads back)."""
    return fragments.new_messages_html(
        reads.messages(user, [result.plan.user_message_id, result.plan.answer_id])
    )


# --- Starting a turn ------------------------------------------------------------------


def test_send_on_an_existing_conversation_takes_a_fixed_number_of_statements(user, catalogue):
    Quota.objects.create(user=user, tokens_per_day=1_000_000, tokens_per_month=10_000_000)
    conversation_id = conversation_with_turns(user)

    _result, statements = send_counting_statements(user, conversation_id)

    assert len(statements) == SEND_STATEMENTS, "\n".join(statements)
    # The conversation is written once per turn, with its new leaf.
    assert sum(sql.count('UPDATE "conversations_conversation"') for sql in statements) == 1


def test_a_send_with_an_assistant_costs_one_statement_more(user, catalogue):
    """Its assistant is read fresh each turn: a disabled or unshared one stops at once."""
    Quota.objects.create(user=user, tokens_per_day=1_000_000, tokens_per_month=10_000_000)
    assistant = Assistant(owner=user, name="Reviewer", instructions="Review.")
    record_version(assistant)
    conversation_id = conversation_with_turns(user)
    Conversation.objects.filter(pk=conversation_id).update(assistant=assistant)

    result, statements = send_counting_statements(user, conversation_id)

    assert len(statements) == SEND_STATEMENTS + 1, "\n".join(statements)
    assert result.plan.instructions == "Review."
    assert Message.objects.get(pk=result.plan.answer_id).assistant_version == 1


def test_regenerate_takes_a_fixed_number_of_statements(user, catalogue):
    Quota.objects.create(user=user, tokens_per_day=1_000_000, tokens_per_month=10_000_000)
    last = send(user, conversation_with_turns(user), text="One more")
    finish(last.plan)

    with CaptureQueriesContext(connection) as captured:
        starts.prepare_regenerate(user=user, message_id=last.plan.answer_id, worker_channel="w")

    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) == REGENERATE_STATEMENTS, "\n".join(statements)


def test_an_admin_change_of_limits_or_models_costs_the_next_send_one_statement_each(
    user, catalogue
):
    conversation_id = conversation_with_turns(user)
    Quota.objects.create(user=user, tokens_per_day=1_000_000)  # forgets the cached limits
    ModelChoice.objects.get(upstream_id="sim-mini").save()  # and the cached model access

    _result, statements = send_counting_statements(user, conversation_id)

    assert len(statements) == SEND_STATEMENTS + 2, "\n".join(statements)


def test_send_replaying_the_history_reads_the_images_once_more(user, catalogue, replaying):
    conversation_id = conversation_with_turns(user, turns=4)

    result, statements = send_counting_statements(user, conversation_id)

    assert len(statements) == SEND_STATEMENTS + 1, "\n".join(statements)
    assert len(result.plan.history) == 9
    assert result.plan.history[1] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Answer 0"}],
    }


def test_send_writes_model_instructions_leaf_and_activity_time_together(user, catalogue):
    first = send(user)
    finish(first.plan)
    before = Conversation.objects.get(pk=first.conversation.pk).updated_at

    result = send(
        user, first.conversation.pk, "Now shorter", "sim-mini", instructions="  Be brief.  "
    )

    saved = Conversation.objects.get(pk=first.conversation.pk)
    assert saved.model == model("sim-mini")
    assert saved.instructions == "Be brief."
    assert saved.current_leaf_id == result.plan.answer_id
    assert saved.updated_at > before
    assert result.conversation.current_leaf_id == result.plan.answer_id


def test_refused_send_leaves_the_conversation_as_it_was(user, catalogue):
    first = send(user)
    finish(first.plan)
    before = Conversation.objects.get(pk=first.conversation.pk)
    Quota.objects.create(user=user, tokens_per_day=0)

    with pytest.raises(admission.Refused):
        send(user, first.conversation.pk, "Again", "sim-mini", instructions="Other instructions")

    after = Conversation.objects.get(pk=first.conversation.pk)
    assert (after.model_id, after.instructions, after.current_leaf_id, after.updated_at) == (
        before.model_id,
        before.instructions,
        before.current_leaf_id,
        before.updated_at,
    )
    assert Message.objects.filter(conversation=after).count() == 2


def test_sending_tab_draws_the_new_conversation_as_any_other_tab_would(user, catalogue):
    result = send(user, text="Hello <b>there</b>")

    html = fragments.new_messages_html(list(result.messages))

    assert html == shown_by_other_tab(user, result)
    assert "Sim Chat" in html  # the answer is labelled with the catalogue's name
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in html


def test_sending_tab_draws_a_later_turn_as_any_other_tab_would(user, catalogue):
    conversation_id = conversation_with_turns(user, turns=2)

    result = send(
        user, conversation_id, text="And then?", upstream_id="sim-reasoner", effort="high"
    )

    html = fragments.new_messages_html(list(result.messages))
    assert html == shown_by_other_tab(user, result)
    assert "Sim Reasoner" in html
    assert "effort" in html


def test_sending_tab_draws_the_images_of_the_question(user, catalogue):
    picture = image(user)

    result = send(user, text="What is this?", attachment_ids=(picture.pk,))

    html = fragments.new_messages_html(list(result.messages))
    assert html == shown_by_other_tab(user, result)
    assert 'alt="cat.png"' in html


def test_sending_tab_draws_a_question_after_an_edit_as_any_other_tab_would(user, catalogue):
    first = send(user, text="Original")
    finish(first.plan)
    edited = starts.prepare_edit(
        user=user, message_id=first.plan.user_message_id, text="Edited", worker_channel="w"
    )
    finish(edited)

    result = send(user, first.conversation.pk, text="Follow-up")

    assert fragments.new_messages_html(list(result.messages)) == shown_by_other_tab(user, result)


def test_turn_without_gateway_storage_replays_the_images_of_earlier_questions(
    user, catalogue, replaying
):
    picture = image(user)
    first = send(user, text="Look", attachment_ids=(picture.pk,))
    finish(first.plan)

    result = send(user, first.conversation.pk, text="And now?")

    question = result.plan.history[0]
    assert [part["type"] for part in question["content"]] == ["input_text", "input_image"]


# --- Finishing a turn -----------------------------------------------------------------


def test_final_bubble_is_the_same_as_a_fresh_read(user, catalogue):
    result = send(user, text="Hello")

    message = finish(result.plan, text="**Done**")

    assert fragments.message_html(message) == fragments.message_html(
        reads.message(user, result.plan.answer_id)
    )
    assert "Sim Chat" in fragments.message_html(message)


def test_final_bubble_of_a_regenerated_answer_shows_its_versions(user, catalogue):
    first = send(user)
    finish(first.plan, text="First try")
    plan = starts.prepare_regenerate(user=user, message_id=first.plan.answer_id, worker_channel="w")

    message = finish(plan, text="Second try")

    html = fragments.message_html(message)
    assert html == fragments.message_html(reads.message(user, plan.answer_id))
    assert "2 / 2" in html


def test_final_bubble_of_a_model_renamed_upstream_shows_the_name_it_was_sent_with(user, catalogue):
    result = send(user)
    ModelChoice.objects.filter(upstream_id="sim-chat").update(upstream_id="sim-chat-2")

    message = finish(result.plan)

    assert fragments.message_html(message) == fragments.message_html(
        reads.message(user, result.plan.answer_id)
    )


def test_finishing_records_usage_and_settles_the_hold(user, catalogue):
    result = send(user)

    finished = finish(result.plan, usage=Usage(12, 0, 30, 0, 42))

    record = UsageRecord.objects.get(message=finished.message)
    assert (record.user, record.conversation_id, record.total_tokens) == (
        user,
        result.conversation.pk,
        42,
    )
    assert record.cost > 0
    assert sorted(QuotaCounter.objects.filter(user=user).values_list("reserved", "used")) == [
        (0, 42),
        (0, 42),
    ]


# --- Titles ---------------------------------------------------------------------------


def test_title_is_saved_and_recorded_together_outside_the_quota(user, catalogue):
    result = send(user)

    saved = titles.record_title(result.plan, "Greetings", Usage(5, 0, 5, 0, 10))

    assert saved
    assert Conversation.objects.get(pk=result.conversation.pk).title == "Greetings"
    record = UsageRecord.objects.get(purpose=UsageRecord.Purpose.TITLE)
    assert (record.user, record.conversation_id, record.total_tokens) == (
        user,
        result.conversation.pk,
        10,
    )
    assert record.model == model()
    assert [status.used for status in quotas.status(user)] == [0, 0]


def test_title_keeps_the_users_own_name_but_still_charges(user, catalogue):
    result = send(user)
    Conversation.objects.filter(pk=result.conversation.pk).update(title="My name")

    assert not titles.record_title(result.plan, "Greetings", Usage(5, 0, 5, 0, 10))

    assert Conversation.objects.get(pk=result.conversation.pk).title == "My name"
    assert UsageRecord.objects.get(purpose=UsageRecord.Purpose.TITLE).total_tokens == 10


def test_title_of_a_deleted_conversation_is_still_charged(user, catalogue):
    result = send(user)
    Conversation.objects.filter(pk=result.conversation.pk).delete()

    assert not titles.record_title(result.plan, "Greetings", Usage(5, 0, 5, 0, 10))

    record = UsageRecord.objects.get(purpose=UsageRecord.Purpose.TITLE)
    assert (record.user, record.conversation, record.total_tokens) == (user, None, 10)


def test_title_from_the_fallback_charges_nothing(user, catalogue):
    result = send(user)

    assert titles.record_title(result.plan, "Hello", None)

    assert not UsageRecord.objects.filter(purpose=UsageRecord.Purpose.TITLE).exists()


# --- The quota hold -------------------------------------------------------------------


def test_hold_lost_on_the_month_gives_the_day_back(user):
    Quota.objects.create(user=user, tokens_per_day=10_000, tokens_per_month=500)
    reservation = quotas.reserve(user=user, input_estimate=100, max_output_tokens=100)
    day, month = reservation.counter_ids

    # Another turn took the month's room since this one looked: the day row had room.
    assert not quotas.hold((day, month), [10_000, 500], 400)

    assert QuotaCounter.objects.get(pk=day).reserved == 200
    assert QuotaCounter.objects.get(pk=month).reserved == 200

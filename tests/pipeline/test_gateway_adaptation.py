"""A turn adapts to what the gateway can do, and says so: issue #15 through whole turns.

Against the simulator over real HTTP, which rejects what OpenAI rejects: a reasoning
option or a web search the model does not take is dropped, remembered on the catalogue
entry and noted in the bubble; a model the gateway does not know is marked; replayed
history is cut to the model's context window; a final save that fails keeps the text.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations.history import reads
from conversations.models import Message, ModelChoice, UsageRecord
from conversations.pipeline import fragments
from conversations.pipeline.plans import fit_history, paired_tool_items
from tests.support.turns import ask

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def set_model(upstream_id: str, **fields) -> None:
    ModelChoice.objects.filter(upstream_id=upstream_id).update(**fields)


@sync_to_async
def entry(upstream_id: str) -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


@sync_to_async
def bubble_html(message: Message, *, staff: bool = False) -> str:
    return fragments.message_html(reads.message_views([message])[0], staff=staff)


async def test_rejected_reasoning_effort_is_dropped_remembered_and_noted(gateway, user):
    # An admin turned reasoning on for a model that does not reason.
    await set_model(
        "sim-mini",
        supports_reasoning=True,
        reasoning_efforts="low,high",
        default_reasoning_effort="",
    )

    _, message = await ask(user, "Hello there", model="sim-mini", effort="high")

    sent = gateway.requests.streamed()
    assert [("reasoning" in body) for body in sent] == [True, False]
    assert message.status == Message.Status.COMPLETE
    assert message.text
    assert message.reasoning_effort == ""  # the bubble must not claim "high effort"
    assert message.notes == [{"code": "without_param", "param": "reasoning"}]
    html = await bubble_html(message)
    assert "Answered without reasoning effort: this model does not accept it." in html
    assert "high effort" not in html
    rejected = (await entry("sim-mini")).unsupported_params
    assert list(rejected) == ["reasoning"]
    assert "reasoning.effort" in rejected["reasoning"]["message"]

    # The next turn does not try again.
    before = len(gateway.requests.streamed())
    _, again = await ask(user, "And again", model="sim-mini", effort="high")
    assert [("reasoning" in body) for body in gateway.requests.streamed()[before:]] == [False]
    assert again.status == Message.Status.COMPLETE
    assert again.reasoning_effort == ""  # nor does its bubble claim an effort


async def test_web_search_the_model_does_not_take_is_dropped_and_noted(gateway, user):
    await set_model("sim-mini", supports_web_search=True)

    _, message = await ask(user, "Look up Django", model="sim-mini", web_search=True)

    assert message.status == Message.Status.COMPLETE
    assert message.notes == [{"code": "without_param", "param": "tools.web_search"}]
    assert "tools.web_search" in (await entry("sim-mini")).unsupported_params


async def test_a_model_the_gateway_does_not_know_is_marked_and_then_cleared(gateway, user):
    name = "sim-chat+fault=404,times:1,tag:unknown-model"
    await sync_to_async(ModelChoice.objects.create)(upstream_id=name, label="Renamed Chat")

    _, failed = await ask(user, "Hello", model=name)

    assert failed.status == Message.Status.FAILED
    assert failed.error_code == "model_not_found"
    assert "not known" in failed.error
    assert "404" in failed.error_detail
    marked = await entry(name)
    assert marked.unknown_to_gateway_at is not None
    assert "404" in marked.unknown_to_gateway_evidence

    _, ok = await ask(user, "Hello again", model=name)

    assert ok.status == Message.Status.COMPLETE
    assert (await entry(name)).unknown_to_gateway_at is None


async def test_staff_see_what_the_gateway_said_users_see_a_sentence(gateway, user):
    name = "sim-chat+fault=404,tag:details"
    await sync_to_async(ModelChoice.objects.create)(upstream_id=name, label="Gone")
    _, failed = await ask(user, "Hello", model=name)

    for_user = await bubble_html(failed)
    for_staff = await bubble_html(failed, staff=True)

    assert failed.error_detail
    assert "What the model service said" not in for_user
    assert "What the model service said" in for_staff
    assert "HTTP 404" in for_staff


async def test_replayed_history_is_cut_to_the_context_window_and_noted(gateway, user, replaying):
    words = "lorem ipsum dolor sit amet " * 40  # about 270 tokens a question
    first, _ = await ask(user, f"Turn one. {words}")
    conversation_id = first.conversation.pk
    for number in ("two", "three"):
        await ask(user, f"Turn {number}. {words}", conversation_id=conversation_id)
    await set_model("sim-chat", context_window=900, max_output_tokens=200)
    before = len(gateway.requests.streamed())

    _, last = await ask(user, "Turn four: what came before?", conversation_id=conversation_id)

    sent = gateway.requests.streamed()[before]
    questions = [
        item["content"][0]["text"][:8] for item in sent["input"] if item.get("role") == "user"
    ]
    assert questions == ["Turn thr", "Turn fou"]
    assert last.notes == [{"code": "turns_left_out", "count": 2}]
    html = await bubble_html(last)
    assert "2 earlier turns were left out to fit the model&#x27;s context window." in html


def test_fitting_history_keeps_whole_turns_and_always_the_question():
    def turn(n):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": n}]},
            {"type": "function_call", "call_id": f"c{n}", "name": "t", "arguments": "{}"},
            {"type": "function_call_output", "call_id": f"c{n}", "output": "x" * 400},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": n}],
            },
        ]

    items = [*turn("1"), *turn("2"), *turn("3")]

    kept, left_out = fit_history(items, budget=300)
    assert (kept, left_out) == (turn("3"), 2)
    assert fit_history(items, budget=None) == (items, 0)
    assert fit_history(items, budget=0) == (turn("3"), 2)


def test_replay_never_sends_a_call_without_its_output_or_an_output_without_its_call():
    items = [
        {"type": "function_call", "call_id": "a", "name": "t", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "1"},
        {"type": "function_call", "call_id": "stopped", "name": "t", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "orphan", "output": "2"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok"}],
        },
    ]

    assert [item.get("call_id") for item in paired_tool_items(items)] == ["a", "a", None]


@pytest.fixture
def refuse_complete_answers(transactional_db):
    """Make the database refuse the final write of a complete answer, as a failed save.

    A trigger, so the failure comes from the database itself on both backends; the
    smaller write that keeps the text (status "failed") passes.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_complete() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'final save refused for the test'; END; $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_complete BEFORE UPDATE ON conversations_message "
                "FOR EACH ROW WHEN (NEW.status = 'complete') EXECUTE FUNCTION refuse_complete()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_complete BEFORE UPDATE ON conversations_message "
                "FOR EACH ROW WHEN NEW.status = 'complete' "
                "BEGIN SELECT RAISE(ABORT, 'final save refused for the test'); END"
            )
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER refuse_complete ON conversations_message")
            cursor.execute("DROP FUNCTION refuse_complete()")
        else:
            cursor.execute("DROP TRIGGER refuse_complete")


async def test_a_final_save_that_fails_keeps_the_text_and_the_usage(
    gateway, user, refuse_complete_answers, caplog
):
    caplog.set_level("ERROR", logger="conversations.pipeline.generation")

    _, message = await ask(user, "Tell me about Django")

    assert message.status == Message.Status.FAILED
    assert len(message.text) > 50  # what streamed is kept
    assert message.error_code == "save_failed"
    assert "final save refused for the test" in message.error_detail
    assert message.output_tokens
    records = await sync_to_async(list)(UsageRecord.objects.filter(message=message))
    assert [r.estimated for r in records] == [False]
    failures = [r for r in caplog.records if "could not save the end" in r.getMessage()]
    assert len(failures) == 1
    assert "final save refused" in str(failures[0].exc_info[1])


# --- A gateway that ignores previous_response_id (the simulator's stateless relay) -------


@sync_to_async
def relay_model(name: str, **fields) -> str:
    ModelChoice.objects.create(upstream_id=name, label="Relay Chat", **fields)
    return name


async def test_auto_detects_a_stateless_gateway_and_replays_before_any_text(gateway, user):
    name = await relay_model("sim-chat+fault=relay,tag:auto")
    first, first_answer = await ask(user, "My name is Ming.", model=name)
    assert len(first_answer.response_id) > 400  # LiteLLM-sized ids are kept whole
    before = len(gateway.requests.streamed())

    _, second = await ask(
        user, "What is my name?", model=name, conversation_id=first.conversation.pk
    )

    sent = gateway.requests.streamed()[before:]
    assert sent[0]["previous_response_id"] == first_answer.response_id
    assert "previous_response_id" not in sent[1]
    assert [item["role"] for item in sent[1]["input"]] == ["user", "assistant", "user"]
    assert sent[1]["input"][1]["content"] == [{"type": "output_text", "text": first_answer.text}]
    assert second.status == Message.Status.COMPLETE
    assert "Ming" in second.text
    assert second.notes == []  # nothing was shown without the context
    assert second.previous_response_id == ""
    learned = await entry(name)
    assert learned.stateless_detected_at is not None
    assert first_answer.response_id[:40] in learned.stateless_evidence
    assert "echoed nothing" in learned.stateless_evidence

    # From now on the model replays at once: one request, no previous_response_id.
    before = len(gateway.requests.streamed())
    _, third = await ask(
        user, "What is my name?", model=name, conversation_id=first.conversation.pk
    )
    sent = gateway.requests.streamed()[before:]
    assert len(sent) == 1
    assert "previous_response_id" not in sent[0]
    assert len(sent[0]["input"]) == 5
    assert "Ming" in third.text


async def test_late_detection_writes_the_answer_again_and_says_so(gateway, user):
    name = await relay_model("sim-chat+fault=relay:late,tag:late")
    first, _ = await ask(user, "My name is Ming.", model=name)
    before = len(gateway.requests.streamed())

    _, second = await ask(
        user, "What is my name?", model=name, conversation_id=first.conversation.pk
    )

    assert len(gateway.requests.streamed()[before:]) == 2
    assert second.status == Message.Status.COMPLETE
    assert "Ming" in second.text
    assert second.notes == [{"code": "resent_with_history"}]
    html = await bubble_html(second)
    assert "this answer was written again with the whole conversation sent" in html
    # Both responses were billed; both are recorded as the answer's.
    records = await sync_to_async(list)(
        UsageRecord.objects.filter(message=second).values_list("purpose", "estimated")
    )
    assert records == [("answer", False), ("answer", False)]
    assert (await entry(name)).stateless_detected_at is not None


async def test_server_mode_trusts_the_gateway_as_the_admin_chose(gateway, user):
    name = await relay_model(
        "sim-chat+fault=relay,tag:server", context_mode=ModelChoice.ContextMode.SERVER
    )
    first, first_answer = await ask(user, "My name is Ming.", model=name)
    before = len(gateway.requests.streamed())

    _, second = await ask(
        user, "What is my name?", model=name, conversation_id=first.conversation.pk
    )

    sent = gateway.requests.streamed()[before:]
    assert [body["previous_response_id"] for body in sent] == [first_answer.response_id]
    assert second.status == Message.Status.COMPLETE
    assert (await entry(name)).stateless_detected_at is None

"""The end of an answer: its final write, what it cost, and what it taught about the model.

One transaction per answer: the message's final state, the end of its running row,
its usage recorded and its quota hold settled (`ledger.record_spending`), and the
catalogue entry's marks. If that write fails, `save_answer_text` keeps the text and
the cost in a smaller one.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from conversations.gateway.errors import ModelNotFoundError
from conversations.history import reads
from conversations.models import Message, ModelChoice, RunningAnswer, UsageRecord
from conversations.pipeline.answer import AnswerState
from conversations.pipeline.plans import TurnPlan
from conversations.rendering import stored
from conversations.usage import ledger

__all__ = [
    "finish_answer",
    "record_stateless_gateway",
    "record_unsupported_param",
    "save_answer_text",
    "storable",
]

# What a failed answer says when even its final save failed; the text is kept.
SAVE_FAILED = "This answer could not be saved completely; its text was kept."


def finish_answer(
    plan: TurnPlan, state: AnswerState, *, previous_id: str, notes: Sequence[dict] = ()
) -> reads.MessageView:
    """Write the answer's final state in one update, charge it, and return it.

    `notes` say how the answer was made when that differs from what the user chose
    (an option the model refused, history left out); a refused reasoning option also
    takes the effort badge off the bubble. What the app learned about the model on
    the way (that the gateway does not know it, or knows it again) goes to its
    catalogue entry in the same transaction.
    """
    outcome = state.outcome
    assert outcome is not None
    fields = {
        "text": storable(state.text),
        "status": outcome.status,
        "error": outcome.error,
        "error_code": outcome.error_code,
        "error_detail": storable(state.error.detail_for_staff()) if state.error else "",
        "notes": list(notes),
        "response_id": state.response_id,
        "previous_response_id": previous_id,
        "replay_items": storable(replayed_output(state.replay_items)),
        "reasoning_summary": storable(state.reasoning_text),
        "citations": storable(state.citations),
        "tool_calls": storable(state.tool_calls),
        "web_searches": storable(
            [{"query": s["query"], "status": s["status"]} for s in state.searches]
        ),
        **token_counts(state),
    }
    if any(note.get("param") == "reasoning" for note in notes):
        fields["reasoning_effort"] = ""
    return write_ending(plan, state, fields)


def save_answer_text(
    plan: TurnPlan, state: AnswerState, *, cause: BaseException
) -> reads.MessageView:
    """Keep what a failed final save would have lost: the text and what it cost.

    The smaller write leaves out everything that could have made the full one fail
    (ids, JSON columns): the streamed text, the token counts and the reason, so the
    answer reads as failed with its words kept, and the quota is settled once.
    """
    fields = {
        "text": storable(state.text),
        "status": Message.Status.FAILED,
        "error": SAVE_FAILED,
        "error_code": "save_failed",
        "error_detail": storable(f"{type(cause).__name__}: {cause}")[:2000],
        **token_counts(state),
    }
    return write_ending(plan, state, fields)


def write_ending(plan: TurnPlan, state: AnswerState, fields: dict) -> reads.MessageView:
    """Write an answer's end, record and settle what it cost, and return it for its bubble.

    The answer stops running in the same transaction: its running row goes with the
    hold it kept. The conversation's activity time was set when the turn started; the
    sidebar needs no second write for its end.
    """
    # The answer's HTML is stored with its final text, in the same update. The citations
    # are the row's when this write leaves them out (`save_answer_text`): none yet.
    html = stored.columns(
        role=Message.Role.ASSISTANT, text=fields["text"], citations=fields.get("citations", ())
    )
    fields = {**fields, **html, "updated_at": timezone.now()}
    with transaction.atomic():
        Message.objects.filter(pk=plan.answer_id).update(**fields)
        RunningAnswer.objects.filter(pk=plan.answer_id).delete()
        message = Message.objects.get(pk=plan.answer_id)
        model_choice = ModelChoice.objects.filter(pk=plan.model_choice_id).first()
        ledger.record_spending(
            answer_spending(plan, state),
            reservation=plan.reservation,
            user_id=plan.user_id,
            conversation_id=plan.conversation_id,
            message=message,
            model_choice=model_choice,
            model_name=plan.model,
            assistant_name=plan.assistant_name,
        )
        learn_about_model(plan, state, message.status)
    # The final bubble: its switcher needs its alternatives, and its label is the
    # catalogue entry it was generated with, unless renamed upstream.
    labels = {model_choice.upstream_id: model_choice.label} if model_choice else None
    alternatives = reads.alternatives_of([message])
    return reads.message_views([message], alternatives=alternatives, labels=labels)[0]


def answer_spending(plan: TurnPlan, state: AnswerState) -> list[ledger.Spent]:
    """Return what each response of the answer cost.

    Earlier rounds of a tool-calling turn count as tool rounds, and responses thrown
    away to ask again with the history (the gateway had forgotten it) as answers: the
    gateway billed them all the same. The last response counts with the gateway's own
    numbers when it sent them; as an estimate, marked as such, when the stream died or
    was stopped after the request reached the gateway; and not at all when the gateway
    refused the request outright.
    """
    spent = [ledger.Spent(usage) for usage in state.discarded_usages]
    spent += [
        ledger.Spent(usage, purpose=UsageRecord.Purpose.TOOL_ROUND) for usage in state.round_usages
    ]
    if state.usage is not None:
        spent.append(ledger.Spent(state.usage))
    elif state.response_id or state.text:
        estimate = ledger.estimated_usage(plan.input_estimate, state.text)
        spent.append(ledger.Spent(estimate, estimated=True))
    return spent


def token_counts(state: AnswerState) -> dict:
    """Return the answer's token columns: every response of the turn added up."""
    spent = state.all_usages
    if not spent:
        return {"input_tokens": None, "output_tokens": None, "reasoning_tokens": None}
    return {
        "input_tokens": sum(u.input_tokens for u in spent),
        "output_tokens": sum(u.output_tokens for u in spent),
        "reasoning_tokens": sum(u.reasoning_tokens for u in spent),
    }


def learn_about_model(plan: TurnPlan, state: AnswerState, status: str) -> None:
    """Mark the catalogue entry unknown to the gateway, or clear that mark on a success."""
    if plan.model_choice_id is None:
        return
    entry = ModelChoice.objects.filter(pk=plan.model_choice_id)
    if isinstance(state.error, ModelNotFoundError):
        entry.update(
            unknown_to_gateway_at=timezone.now(),
            unknown_to_gateway_evidence=storable(state.error.detail_for_staff())[:2000],
        )
    elif plan.model_marked_unknown and status == Message.Status.COMPLETE:
        entry.update(unknown_to_gateway_at=None, unknown_to_gateway_evidence="")


def record_unsupported_param(model_choice_id: int | None, param: str, evidence: str) -> None:
    """Remember that the gateway rejected `param` for the model, so it is not sent again."""
    if model_choice_id is None:
        return
    with transaction.atomic():
        model = ModelChoice.objects.select_for_update().filter(pk=model_choice_id).first()
        if model is None:
            return
        rejected = dict(model.unsupported_params or {})
        rejected[param] = {"at": timezone.now().isoformat(), "message": storable(evidence)[:1000]}
        model.unsupported_params = rejected
        model.save(update_fields=["unsupported_params"])


def record_stateless_gateway(model_choice_id: int | None, evidence: str) -> None:
    """Remember that the gateway ignores previous_response_id for the model ("auto" mode).

    Only the first detection is kept: its evidence is what an admin needs to see.
    """
    if model_choice_id is None:
        return
    ModelChoice.objects.filter(pk=model_choice_id, stateless_detected_at__isnull=True).update(
        stateless_detected_at=timezone.now(), stateless_evidence=storable(evidence)[:2000]
    )


def replayed_output(items: list[dict]) -> list[dict]:
    """Return the output items worth keeping for later replays: none when the text says it all.

    An answer that is one message replays as its text; only tool calls and their
    outputs, or encrypted reasoning, need the items themselves.
    """
    if all(item.get("type") == "message" for item in items):
        return []
    return items


def storable(value):
    """Return `value` with what the database refuses removed: NUL and lone surrogates.

    PostgreSQL rejects NUL in text and JSON and an unpaired surrogate cannot be encoded
    at all; a gateway can send either, and the answer must still be saved.
    """
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "")
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value

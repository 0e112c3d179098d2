"""Every simulator fault mode, driven through a whole turn: what the user is left with.

Each row of `FAULTS` names a fault spec (conversations/gateway/simulator/FAULTS.md) and
the outcome a truthful app must persist for it: the answer's status and error code, the
error in plain words, whether the text streamed before the fault is kept, and how the
turn is charged (the gateway's reported usage, an estimate, or nothing when the request
was refused before any answer started). Every case also checks that the quota hold is
released and that the conversation still works: a normal turn after the fault completes.

The observed outcome of each case is written to test-artifacts/faults.json;
`python -m tests.reliability_report` renders docs/reliability.md from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from conversations.models import QuotaCounter, UsageRecord
from tests.support.turns import ask

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RESULTS = ARTIFACTS / "faults.json"
QUESTION = "Tell me a story"
FOLLOW_UP = "Thanks, and one more thing?"
SHORT_READ_TIMEOUT = 0.5  # seconds: GATEWAY_READ_TIMEOUT for the silent faults


@dataclass(frozen=True)
class Expected:
    spec: str
    gateway_does: str
    status: str
    error_code: str
    error_words: str  # a phrase the stored error contains ("" = no error)
    partial: bool  # some, not all, of the answer is kept
    usage: str  # "reported", "estimated" or "none"
    settings: dict = field(default_factory=dict)


SILENT = {"GATEWAY_READ_TIMEOUT": SHORT_READ_TIMEOUT}

FAULTS = [
    Expected("delay:0.3", "0.3 s of silence first", "complete", "", "", False, "reported"),
    Expected(
        "hang",
        "accepts the connection and never answers (read timeout 0.5 s)",
        "failed",
        "timeout",
        "took too long",
        False,
        "none",
        SILENT,
    ),
    Expected("401", "401 invalid_api_key", "failed", "auth", "credentials", False, "none"),
    Expected(
        "429:2",
        "429 rate_limit_exceeded, retry-after 2 s",
        "failed",
        "rate_limited",
        "try again in 2 seconds",
        False,
        "none",
    ),
    Expected("500", "500 server_error", "failed", "unavailable", "unavailable", False, "none"),
    Expected("503", "503 engine overloaded", "failed", "unavailable", "unavailable", False, "none"),
    Expected(
        "400",
        "400 unknown_parameter (simulated_bad_parameter)",
        "failed",
        "unsupported_param",
        "does not accept one of the options",
        False,
        "none",
    ),
    Expected(
        "failed",
        "response.failed after three text deltas",
        "failed",
        "failed",
        "failed while answering",
        True,
        "estimated",
    ),
    Expected(
        "error",
        "nested error event (too_many_requests) after three deltas, then response.failed",
        "failed",
        "rate_limited",
        "busy",
        True,
        "estimated",
    ),
    Expected(
        "error-flat",
        "flat error event (server_error) after three deltas, stream ends",
        "failed",
        "failed",
        "failed while answering",
        True,
        "estimated",
    ),
    Expected(
        "incomplete",
        "response.incomplete (max_output_tokens) halfway",
        "incomplete",
        "cut_off",
        "length limit",
        True,
        "reported",
    ),
    Expected(
        "cut",
        "stream ends after three deltas with no terminal event",
        "failed",
        "cut_off",
        "connection to the model service broke",
        True,
        "estimated",
    ),
    Expected(
        "malformed",
        "a broken data: line after three deltas, then the rest of the stream",
        "failed",
        "cut_off",
        "connection to the model service broke",
        True,
        "estimated",
    ),
    Expected(
        "stall",
        "stops sending after three deltas, connection left open (read timeout 0.5 s)",
        "failed",
        "timeout",
        "took too long",
        True,
        "estimated",
        SILENT,
    ),
]

_rows: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def write_results():
    """Write the observed outcomes of the module's cases when it finishes."""
    yield
    if not _rows:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    order = [case.spec for case in FAULTS]
    rows = sorted(_rows, key=lambda row: order.index(row["spec"]))
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


@pytest.fixture(autouse=True)
async def close_worker_connections():
    """Close the connection the ORM opened in sync_to_async's thread, so the test
    database can be dropped when the run ends."""
    yield
    await sync_to_async(connections.close_all)()


@sync_to_async
def charges(message_id: int) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(message_id=message_id).order_by("pk"))


@sync_to_async
def counters(user) -> list[tuple[int, int]]:
    return list(QuotaCounter.objects.filter(user=user).values_list("reserved", "used"))


def usage_kind(records: list[UsageRecord]) -> str:
    if not records:
        return "none"
    return "estimated" if any(record.estimated for record in records) else "reported"


@pytest.mark.parametrize("case", FAULTS, ids=[case.spec for case in FAULTS])
async def test_fault_ends_in_a_truthful_state_and_the_chat_goes_on(case, gateway, user, settings):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    _, reference = await ask(user, QUESTION, model="sim-chat")
    assert reference.status == "complete"

    result, answer = await ask(user, QUESTION, model=f"sim-chat+fault={case.spec}")
    records = await charges(answer.pk)
    after_fault = await counters(user)
    follow_result, follow = await ask(
        user, FOLLOW_UP, model="sim-chat", conversation_id=result.conversation.pk
    )

    _rows.append(
        {
            "spec": case.spec,
            "gateway_does": case.gateway_does,
            "status": answer.status,
            "error_code": answer.error_code,
            "error": answer.error,
            "kept_chars": len(answer.text),
            "full_chars": len(reference.text),
            "usage": usage_kind(records),
            "usage_tokens": sum(record.total_tokens for record in records),
            "message_tokens": [answer.input_tokens, answer.output_tokens],
            "reserved_after": sum(reserved for reserved, _ in after_fault),
            "next_turn": follow.status,
        }
    )

    assert (answer.status, answer.error_code) == (case.status, case.error_code)
    if case.error_words:
        assert case.error_words in answer.error, answer.error
        assert "{" not in answer.error and "HTTP" not in answer.error  # plain words
    else:
        assert answer.error == ""
    if case.partial:
        assert answer.text, "the text streamed before the fault was lost"
        assert reference.text.startswith(answer.text.rstrip()), answer.text
        assert len(answer.text) < len(reference.text)
    elif case.status == "complete":
        assert answer.text == reference.text
    else:
        assert answer.text == ""
    assert usage_kind(records) == case.usage
    if case.usage == "reported":
        assert records[-1].total_tokens == answer.input_tokens + answer.output_tokens
    if case.usage == "estimated":
        assert records[-1].output_tokens > 0
    assert all(reserved == 0 for reserved, _ in after_fault), after_fault
    assert follow.status == "complete" and follow.text, follow.error
    assert follow_result.conversation.pk == result.conversation.pk
    assert all(reserved == 0 for reserved, _ in await counters(user))

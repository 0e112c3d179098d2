"""Usage records written as a turn writes them, for tests of totals, charts and reports."""

from __future__ import annotations

from conversations.models import UsageRecord
from conversations.usage.ledger import record_usage


def record(user, model=None, *, tokens=1_000, **extra) -> UsageRecord:
    """Record `tokens` (half in, half out) for `user` on `model` (else "sim-chat")."""
    return record_usage(
        user_id=user.pk,
        conversation_id=None,
        message=None,
        model_choice=model,
        model_name=extra.pop("model_name", model.upstream_id if model else "sim-chat"),
        input_tokens=extra.pop("input_tokens", tokens // 2),
        cached_tokens=0,
        output_tokens=extra.pop("output_tokens", tokens - tokens // 2),
        reasoning_tokens=0,
        total_tokens=tokens,
        estimated=False,
        **extra,
    )

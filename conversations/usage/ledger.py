"""Token usage: recording what each gateway response cost, and summing it up.

Cost is computed when the usage is recorded, from the catalogue's prices at that
moment, and stored on the record: an admin who changes a price later changes future
costs, never the history.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from conversations.gateway.response import Usage
from conversations.models import Assistant, ModelChoice, UsageRecord
from conversations.usage import quotas
from conversations.usage.periods import local_midnight

__all__ = [
    "DailyTotal",
    "Spent",
    "cost_of",
    "daily_totals",
    "estimate_tokens",
    "estimated_usage",
    "record_spending",
    "record_usage",
    "totals",
    "totals_by",
    "with_model_labels",
]

PER_MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")

# Han ideographs, kana, Hangul, and CJK punctuation and full-width forms: in the
# tokenizers of current models each of these is about one token.
CJK = re.compile(
    "[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003134f]"
)


def estimate_tokens(text: str) -> int:
    """Return a rough token count: one per CJK character, one per 4 other characters.

    Used only when a stream died before the gateway reported usage, so the turn is
    still charged; records made from it are marked `estimated`. Rounds up, so any
    non-empty text counts at least one token.
    """
    cjk = len(CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def cost_of(
    model: ModelChoice | None, *, input_tokens: int, cached_tokens: int, output_tokens: int
) -> Decimal:
    """Return the price of a response at the model's current per-million prices.

    Cached tokens are part of the input tokens and are billed at the cached price;
    reasoning tokens are part of the output tokens. No catalogue entry costs nothing.
    """
    if model is None:
        return Decimal(0)
    cached = min(cached_tokens, input_tokens)
    cost = (
        (input_tokens - cached) * model.price_input
        + cached * model.price_cached_input
        + output_tokens * model.price_output
    ) / PER_MILLION
    return cost.quantize(COST_PLACES)


def record_usage(
    *,
    user_id: int,
    conversation_id: int | None,
    message,
    model_choice: ModelChoice | None,
    model_name: str,
    input_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    reasoning_tokens: int,
    total_tokens: int,
    estimated: bool,
    purpose: str = UsageRecord.Purpose.ANSWER,
    assistant_name: str = "",
) -> UsageRecord:
    """Save one gateway response's usage, priced now, under the assistant the answer
    (`message`) spoke as, if any: the caller may know its name (`assistant_name`).

    Without a catalogue entry the model name is looked up in the catalogue, so a
    response from a known model is priced even when the caller had only its name.
    The user and conversation are ids: callers often have only those (a turn's plan).
    """
    if model_choice is None and model_name:
        model_choice = ModelChoice.objects.filter(upstream_id=model_name).first()
    assistant_id = getattr(message, "assistant_id", None)
    if assistant_id is not None and not assistant_name:
        assistant_name = (
            Assistant.objects.filter(pk=assistant_id).values_list("name", flat=True).first() or ""
        )
    return UsageRecord.objects.create(
        user_id=user_id,
        conversation_id=conversation_id,
        message=message,
        model=model_choice,
        model_name=model_name or (model_choice.upstream_id if model_choice else ""),
        assistant_id=assistant_id,
        assistant_name=assistant_name,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning_tokens,
        total_tokens=total_tokens,
        cost=cost_of(
            model_choice,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=output_tokens,
        ),
        estimated=estimated,
        purpose=purpose,
    )


@dataclass(frozen=True, slots=True)
class Spent:
    """What one gateway response used: the gateway's numbers, or an estimate of them."""

    usage: Usage
    estimated: bool = False
    purpose: str = UsageRecord.Purpose.ANSWER


def estimated_usage(input_tokens: int, output_text: str) -> Usage:
    """Return a response's usage as estimated from its input and the text it wrote."""
    output_tokens = estimate_tokens(output_text)
    return Usage(input_tokens, 0, output_tokens, 0, input_tokens + output_tokens)


def record_spending(
    responses: Sequence[Spent],
    *,
    reservation: quotas.Reservation | None,
    user_id: int,
    conversation_id: int | None,
    message,
    model_choice: ModelChoice | None,
    model_name: str,
    assistant_name: str = "",
) -> int:
    """Record what each response cost, settle the quota hold on the total, return it.

    The one way what a request cost reaches the books: a finished answer, an answer
    whose process died, a title. Without a `reservation` the quota is left alone: a
    title is the site's cost, and a turn whose hold ran out has been charged already.
    Call it inside the transaction that saves what the responses produced.
    """
    for spent in responses:
        record_usage(
            user_id=user_id,
            conversation_id=conversation_id,
            message=message,
            model_choice=model_choice,
            model_name=model_name,
            input_tokens=spent.usage.input_tokens,
            cached_tokens=spent.usage.cached_tokens,
            output_tokens=spent.usage.output_tokens,
            reasoning_tokens=spent.usage.reasoning_tokens,
            total_tokens=spent.usage.total_tokens,
            estimated=spent.estimated,
            purpose=spent.purpose,
            assistant_name=assistant_name,
        )
    total = sum(spent.usage.total_tokens for spent in responses)
    if reservation is not None:
        quotas.settle(reservation, total_tokens=total)
    return total


SUMS = {
    "input_tokens": Coalesce(Sum("input_tokens"), 0),
    "output_tokens": Coalesce(Sum("output_tokens"), 0),
    "total_tokens": Coalesce(Sum("total_tokens"), 0),
    "cost": Coalesce(Sum("cost"), Decimal(0)),
    "responses": Count("pk"),
}


def totals(records: QuerySet[UsageRecord]) -> dict:
    """Return token, cost and response sums of `records`."""
    return records.aggregate(**SUMS)


def totals_by(records: QuerySet[UsageRecord], *fields: str, order: str = "tokens") -> list[dict]:
    """Return the sums of `records` grouped by `fields`, biggest first by tokens or cost."""
    ordering = "-cost" if order == "cost" else "-total_tokens"
    # Drop the caller's ordering first: it would otherwise join the GROUP BY.
    return list(records.order_by().values(*fields).annotate(**SUMS).order_by(ordering, *fields))


def with_model_labels(rows: list[dict]) -> list[dict]:
    """Give each per-model row `model_label`: the catalogue's name for its model id.

    Records keep the upstream id they were sent with, which outlives catalogue edits;
    people know models by label. An id no longer in the catalogue shows as it is.
    """
    ids = {row["model_name"] for row in rows if row["model_name"]}
    labels = dict(
        ModelChoice.objects.filter(upstream_id__in=ids).values_list("upstream_id", "label")
    )
    for row in rows:
        row["model_label"] = labels.get(row["model_name"], row["model_name"])
    return rows


@dataclass(frozen=True, slots=True)
class DailyTotal:
    day: datetime.date
    total_tokens: int
    cost: Decimal


def daily_totals(
    records: QuerySet[UsageRecord], *, first: datetime.date, last: datetime.date
) -> list[DailyTotal]:
    """Return one total per local day from `first` to `last`, days without use as zero."""
    rows = (
        records.filter(
            created_at__gte=local_midnight(first),
            created_at__lt=local_midnight(last + datetime.timedelta(days=1)),
        )
        # A caller's ordering (the admin list's newest first) would join the GROUP BY
        # and split each day into one group per record: group by the day alone.
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(total_tokens=SUMS["total_tokens"], cost=SUMS["cost"])
    )
    by_day = {row["day"]: row for row in rows}
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        DailyTotal(
            day,
            by_day[day]["total_tokens"] if day in by_day else 0,
            by_day[day]["cost"] if day in by_day else Decimal(0),
        )
        for day in days
    ]

"""Token quotas: who may spend how much, and the reservations that enforce it.

A turn's cost is known only when its stream ends, yet the limit must hold while many
turns run at once (several tabs, a script, a double click). So a turn first *reserves*
its input estimate plus its output cap, asks the gateway for no more output than it
reserved, and at the end *settles* the reservation to the real usage, or *releases*
it when the gateway never answered.

The check and the hold are one statement on a per-user, per-period counter row::

    UPDATE quotacounter SET reserved = reserved + ask
    WHERE id = ... AND used + reserved <= limit - ask

so the database, not Python, decides who wins: a read-then-write would let twenty
concurrent sends all see the same room and all go through. PostgreSQL re-evaluates the
WHERE clause on the newest row version after waiting for the row lock; SQLite runs one
writer at a time (IMMEDIATE transactions). The day and the month rows are updated in
one transaction, always day first, so a reservation holds both or neither and two
reservations never wait on each other in opposite orders. When the UPDATE matches no
row someone else got there first: the room is read again and the ask shrinks to fit,
or the send is refused.

A period is a row keyed by its first local day (settings.TIME_ZONE), so a reset is
simply a new row: no job runs at midnight, and a hold leaked by a process that died
mid-answer disappears with its period. The counters are kept for users without limits
too, so a limit an admin sets later starts from the truth.

Who may spend how much is read in `usage.limits`.

A turn that calls tools sends several requests, each billed for everything before it.
Each round is charged as it ends and the next one reserves from what is left
(`reserve_next_round`), so a model that keeps calling tools gets ever smaller output
caps and is stopped when nothing is left, instead of every round getting the first
round's cap.

Turns per minute resolve the same way, with `CHAT_TURNS_PER_MINUTE` as the last level.
Every turn start takes a lock on the user's `TurnGate` row (`count_turn_start`) before
it counts anything, so parallel sends are checked one after another: the rate limit
and the concurrency cap hold however many arrive at once.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.models import QuotaCounter, TurnGate
from conversations.usage.limits import Limit, Policy, effective_limits, policy_for
from conversations.usage.periods import DAY, Window, current_windows

__all__ = [
    "MIN_OUTPUT_TOKENS",
    "PeriodStatus",
    "QuotaExceeded",
    "Reservation",
    "TurnRateExceeded",
    "WholeAsk",
    "charge",
    "count_turn_start",
    "counted_starts",
    "known_counter_ids",
    "release",
    "reserve",
    "reserve_next_round",
    "settle",
    "status",
    "tokens_left",
    "whole_ask",
]


# An answer capped below this many output tokens is not worth sending: refuse instead.
MIN_OUTPUT_TOKENS = 16
# Each lost race means another reservation won, so this bound is only ever reached
# under pathological contention; the send is then refused rather than spinning.
RESERVE_ATTEMPTS = 20
# The window of the turn rate limit.
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    """A user's standing in one period, for the usage page and the admin."""

    period: str
    limit: Limit
    used: int
    reserved: int
    resets_at: datetime.datetime

    @property
    def remaining(self) -> int | None:
        if self.limit.tokens is None:
            return None
        return max(self.limit.tokens - self.used - self.reserved, 0)

    @property
    def label(self) -> str:
        return _("Today") if self.period == DAY else _("This month")

    @property
    def reset_description(self) -> str:
        return describe_reset(self.period, self.resets_at)

    @property
    def percent_used(self) -> int:
        if not self.limit.tokens:
            return 100 if self.limit.tokens == 0 else 0
        return min(round(100 * (self.used + self.reserved) / self.limit.tokens), 100)


@dataclass(slots=True)
class Reservation:
    """Tokens held for one turn on the user's day and month counters.

    `max_output_tokens` is the output cap to send to the gateway: the caller's cap,
    lowered to what the quota still allows (None when neither sets one).
    `asked_output_tokens` is the caller's cap itself, which the turn's next round asks
    for again; `already_used` is what its earlier rounds were charged, which settling
    the turn's total leaves out.
    """

    user_id: int
    counter_ids: tuple[int, ...]
    amount: int
    max_output_tokens: int | None
    is_open: bool = True
    asked_output_tokens: int | None = None
    already_used: int = 0


class QuotaExceeded(Exception):
    """The user may not start this turn; `user_message` says why, in their words."""

    def __init__(
        self, *, period: str, limit: int, used: int, reserved: int, resets_at: datetime.datetime
    ) -> None:
        self.period = period
        self.limit = limit
        self.used = used
        self.reserved = reserved
        self.resets_at = resets_at
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        span = _("today") if self.period == DAY else _("this month")
        if self.limit == 0:
            return _(
                "Sending is switched off for your account (a limit of 0 tokens for %(span)s). "
                "Ask an administrator to raise it."
            ) % {"span": span}
        numbers = {"used": f"{self.used:,}", "limit": f"{self.limit:,}", "span": span}
        message = (
            ngettext(
                "You have used %(used)s of your %(limit)s token for %(span)s",
                "You have used %(used)s of your %(limit)s tokens for %(span)s",
                self.limit,
            )
            % numbers
        )
        if self.reserved:
            message += _(", and answers still being written hold %(reserved)s more") % {
                "reserved": f"{self.reserved:,}"
            }
        left = self.limit - self.used - self.reserved
        if left > 0:
            message += ngettext(
                "; the %(left)s left is not enough for this message",
                "; the %(left)s left are not enough for this message",
                left,
            ) % {"left": f"{left:,}"}
        return _("%(message)s. It resets %(reset)s.") % {
            "message": message,
            "reset": describe_reset(self.period, self.resets_at),
        }


def describe_reset(period: str, resets_at: datetime.datetime) -> str:
    """Return "at 00:00 (Asia/Shanghai)" or "on 1 December at 00:00 (Asia/Shanghai)"."""
    local = timezone.localtime(resets_at, timezone.get_default_timezone())
    when = _("at %(time)s (%(zone)s)") % {"time": f"{local:%H:%M}", "zone": settings.TIME_ZONE}
    if period == DAY:
        return when
    # Translators: a day-and-month date format (Django's date filter), as in "1 December".
    day = formats.date_format(local, _("j F"))
    return _("on %(day)s %(when)s") % {"day": day, "when": when}


class TurnRateExceeded(Exception):
    """The user started too many turns in the last minute; `user_message` says so."""

    def __init__(self, *, count: int) -> None:
        self.count = count
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        return ngettext(
            "You have sent %(count)d message in the last minute; wait a moment.",
            "You have sent %(count)d messages in the last minute; wait a moment.",
            self.count,
        ) % {"count": self.count}


def reserve(
    *,
    user,
    input_estimate: int,
    max_output_tokens: int | None,
    now: datetime.datetime | None = None,
    policy: Policy | None = None,
) -> Reservation:
    """Hold input_estimate plus an output cap for a turn, or raise QuotaExceeded.

    `user` is a user or their id; `policy` their limit rows, if the caller read them
    already. The output cap is lowered to what the tightest limit leaves after the
    input; a cap below MIN_OUTPUT_TOKENS refuses the turn. Users without limits always
    pass.
    """
    user_id = getattr(user, "pk", user)
    windows = current_windows(now)
    limits = (policy or policy_for(user_id)).limits()
    caps = [limits[window.period].tokens for window in windows]
    unlimited = all(cap is None for cap in caps)
    # Nearly every turn fits whole: hold its full ask on the counters this process
    # knows, without reading them first. Only a turn the rows refuse (or rows it does
    # not know) reads them, to shrink its output cap to what is left or to refuse.
    ask = whole_ask(user_id, windows, caps, input_estimate, max_output_tokens)
    if ask is not None and hold_rows(ask.rows(user_id, windows), list(caps), ask.amount):
        return ask.reservation(user_id)
    counters = counters_for(user_id, windows)
    ids = tuple(counters[window.period].pk for window in windows)
    if unlimited:
        amount = input_estimate + (max_output_tokens or 0)
        hold(ids, caps, amount)
        return Reservation(
            user_id, ids, amount, max_output_tokens, asked_output_tokens=max_output_tokens
        )
    limited = [window for window in windows if limits[window.period].tokens is not None]
    for _attempt in range(RESERVE_ATTEMPTS):
        tightest = min(limited, key=lambda w: room(counters[w.period], limits[w.period].tokens))
        counter = counters[tightest.period]
        output = room(counter, limits[tightest.period].tokens) - input_estimate
        if max_output_tokens is not None:
            output = min(output, max_output_tokens)
        if output < MIN_OUTPUT_TOKENS:
            break
        amount = input_estimate + output
        if hold(ids, caps, amount):
            return Reservation(user_id, ids, amount, output, asked_output_tokens=max_output_tokens)
        counters = counter_rows(user_id, windows)
    raise QuotaExceeded(
        period=tightest.period,
        limit=limits[tightest.period].tokens,
        used=counter.used,
        reserved=counter.reserved,
        resets_at=tightest.resets_at,
    )


def settle(reservation: Reservation, *, total_tokens: int) -> None:
    """Replace the held tokens with the tokens the turn really used.

    `total_tokens` is what the whole turn used so far; what its earlier rounds were
    charged already (`already_used`) is left out. Call once when the turn ends with
    usage (complete, cut off, stopped after output, or with an estimate when the stream
    died). Real usage may exceed the hold; the next reservation then sees the overrun.
    A second call does nothing.
    """
    if not reservation.is_open:
        return
    reservation.is_open = False
    spent = max(total_tokens - reservation.already_used, 0)
    # Both rows or neither; inside a turn's transaction no savepoint is needed, since
    # nothing here is undone on its own.
    with transaction.atomic(savepoint=False):
        for counter_id in reservation.counter_ids:
            QuotaCounter.objects.filter(pk=counter_id).update(
                used=F("used") + spent, reserved=F("reserved") - reservation.amount
            )


def reserve_next_round(
    reservation: Reservation,
    *,
    used_so_far: int,
    input_estimate: int,
    now: datetime.datetime | None = None,
) -> Reservation:
    """Charge a tool-calling turn's rounds so far and hold its next round, or raise
    QuotaExceeded (the rounds so far are charged all the same).

    The next round asks for the turn's original output cap again, lowered to what is
    left after everything used and held, this turn's earlier rounds included.
    `reservation` is closed; the caller keeps the one returned.
    """
    settle(reservation, total_tokens=used_so_far)
    following = reserve(
        user=reservation.user_id,
        input_estimate=input_estimate,
        max_output_tokens=reservation.asked_output_tokens,
        now=now,
    )
    following.already_used = used_so_far
    return following


def count_turn_start(user_id: int, policy: Policy, *, now: datetime.datetime | None = None) -> None:
    """Lock the user's turn gate, refuse a turn over the rate, else count this one.

    The lock is held until the turn's transaction ends, so every check made after it in
    that transaction (the rate here, the concurrency cap in `records`) sees every turn
    started before and none can start beside it. A refused turn rolls its count back.
    """
    moment = (now or timezone.now()).timestamp()
    gate = TurnGate.objects.select_for_update().filter(user_id=user_id).first()
    if gate is None:
        # ON CONFLICT DO NOTHING: two first turns of a user race harmlessly.
        TurnGate.objects.bulk_create([TurnGate(user_id=user_id)], ignore_conflicts=True)
        gate = TurnGate.objects.select_for_update().get(user_id=user_id)
    gate.recent_starts = counted_starts(gate.recent_starts, moment, policy.turns_per_minute)
    gate.save(update_fields=["recent_starts"])


def counted_starts(recent_starts: list[float], moment: float, limit: int) -> list[float]:
    """Return a gate's log of turn starts with this one, or raise TurnRateExceeded.

    The log keeps the POSIX times of the starts in the last minute; older ones drop out.
    """
    recent = [at for at in recent_starts if moment - at < RATE_WINDOW_SECONDS]
    if len(recent) >= limit:
        raise TurnRateExceeded(count=len(recent))
    return [*recent, moment]


def release(reservation: Reservation) -> None:
    """Give the held tokens back: the turn failed before using any. Idempotent."""
    settle(reservation, total_tokens=0)


def charge(*, user_id: int, total_tokens: int, now: datetime.datetime | None = None) -> None:
    """Count tokens spent outside a reservation (e.g. a title), without any check."""
    counters = counters_for(user_id, current_windows(now))
    settle(
        Reservation(user_id, tuple(row.pk for row in counters.values()), 0, None),
        total_tokens=total_tokens,
    )


def status(user, *, now: datetime.datetime | None = None) -> list[PeriodStatus]:
    """Return the user's limit, use and reset time for today and this month."""
    windows = current_windows(now)
    limits = effective_limits(user)
    rows = counter_rows(user.pk, windows)
    return [
        PeriodStatus(
            period=window.period,
            limit=limits[window.period],
            used=rows[window.period].used if window.period in rows else 0,
            reserved=rows[window.period].reserved if window.period in rows else 0,
            resets_at=window.resets_at,
        )
        for window in windows
    ]


def tokens_left(user, *, now: datetime.datetime | None = None) -> int | None:
    """Return the tokens the user may still use before a limit stops them (the smaller
    of the day's and the month's room), or None without a limit."""
    left = [period.remaining for period in status(user, now=now) if period.remaining is not None]
    return min(left, default=None)


def room(counter: QuotaCounter, limit: int) -> int:
    return limit - counter.used - counter.reserved


def counter_rows(user_id: int, windows: tuple[Window, ...]) -> dict[str, QuotaCounter]:
    """Read the counter rows of `windows` (those that exist), and remember their ids."""
    either = Q()
    for window in windows:
        either |= Q(period=window.period, starts_on=window.starts_on)
    rows = {row.period: row for row in QuotaCounter.objects.filter(either, user_id=user_id)}
    if len(known_ids) >= KNOWN_COUNTERS:
        known_ids.clear()
    for row in rows.values():
        known_ids[(user_id, row.period, row.starts_on)] = row.pk
    return rows


def counters_for(user_id: int, windows: tuple[Window, ...]) -> dict[str, QuotaCounter]:
    """Return the counter rows of `windows`, creating the missing ones.

    INSERT ... ON CONFLICT DO NOTHING lets two first sends of a day race harmlessly.
    """
    rows = counter_rows(user_id, windows)
    if len(rows) < len(windows):
        QuotaCounter.objects.bulk_create(
            [
                QuotaCounter(user_id=user_id, period=w.period, starts_on=w.starts_on)
                for w in windows
            ],
            ignore_conflicts=True,
        )
        rows = counter_rows(user_id, windows)
    return rows


# The ids of the counter rows this process has read, by (user id, period, first day):
# a turn holds its quota on them without reading them first. An id can be stale (its
# row rolled back with a refused turn, and SQLite may give the id to another row), so
# the hold names the row's user, period and day as well, and a row that does not
# match is read again.
known_ids: dict[tuple[int, str, datetime.date], int] = {}
KNOWN_COUNTERS = 50_000


@dataclass(frozen=True, slots=True)
class WholeAsk:
    """A turn's full ask, to hold on counter rows this process knows without reading them.

    `counter_ids` are in the order of the windows; each row takes `amount` only if its
    use and holds stay within the window's cap (None: no limit).
    """

    counter_ids: tuple[int, ...]
    caps: tuple[int | None, ...]
    amount: int
    max_output_tokens: int | None

    def rows(self, user_id: int, windows: tuple[Window, ...]) -> list[QuerySet]:
        """Return each counter as a one-row queryset, naming its user, period and day
        as well as its id (an id can be stale: see `known_ids`)."""
        return [
            QuotaCounter.objects.filter(
                pk=counter_id, user_id=user_id, period=window.period, starts_on=window.starts_on
            )
            for counter_id, window in zip(self.counter_ids, windows, strict=True)
        ]

    def reservation(self, user_id: int) -> Reservation:
        return Reservation(
            user_id,
            self.counter_ids,
            self.amount,
            self.max_output_tokens,
            asked_output_tokens=self.max_output_tokens,
        )


def whole_ask(
    user_id: int,
    windows: tuple[Window, ...],
    caps: Sequence[int | None],
    input_estimate: int,
    max_output_tokens: int | None,
) -> WholeAsk | None:
    """Return the turn's full ask on the counters this process knows; None when one is
    unknown, or when only a shrunk output cap could fit (which needs the rows read)."""
    ids = known_counter_ids(user_id, windows)
    unlimited = all(cap is None for cap in caps)
    if ids is None or not (unlimited or (max_output_tokens or 0) >= MIN_OUTPUT_TOKENS):
        return None
    return WholeAsk(ids, tuple(caps), input_estimate + (max_output_tokens or 0), max_output_tokens)


def known_counter_ids(user_id: int, windows: tuple[Window, ...]) -> tuple[int, ...] | None:
    """Return the ids of the windows' counter rows this process has read, in the order
    of `windows`; None if one is unknown."""
    ids = tuple(known_ids.get((user_id, window.period, window.starts_on)) for window in windows)
    return None if None in ids else ids


def hold(counter_ids: tuple[int, ...], limits: list[int | None], amount: int) -> bool:
    """Add `amount` to every counter's hold if each stays within its limit; all or none."""
    return hold_rows([QuotaCounter.objects.filter(pk=pk) for pk in counter_ids], limits, amount)


def hold_rows(rows: list[QuerySet], limits: list[int | None], amount: int) -> bool:
    """Add `amount` to each one-row queryset's hold if each stays within its limit; all
    or none.

    When a later row has no room (or is not there) the earlier ones are given back in
    the same transaction (rather than rolled back to a savepoint: two statements fewer
    on every turn that fits, which is nearly every turn). Their row locks stay held
    until the turn's transaction ends, as they would after a rollback to a savepoint.
    """
    with transaction.atomic(savepoint=False):
        held: list[QuerySet] = []
        for row, limit in zip(rows, limits, strict=True):
            matching = row
            if limit is not None:
                matching = row.alias(load=F("used") + F("reserved")).filter(
                    load__lte=limit - amount
                )
            if not matching.update(reserved=F("reserved") + amount):
                for taken in held:
                    taken.update(reserved=F("reserved") - amount)
                return False
            held.append(row)
    return True

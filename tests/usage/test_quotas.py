"""Quotas: limit precedence, local periods, reservations and the concurrent-send race."""

from __future__ import annotations

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from conversations.models import DefaultQuota, GroupQuota, Quota, QuotaCounter
from conversations.pipeline import admission
from conversations.usage import limits, quotas
from tests.support import direct_turns

UTC = datetime.UTC
# 23:59:59 on 31 March in Shanghai (UTC+8), one second before both periods reset.
LAST_SECOND_OF_MARCH = datetime.datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC)
FIRST_SECOND_OF_APRIL = datetime.datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC)


def limit(user, *, day=None, month=None) -> Quota:
    return Quota.objects.create(user=user, tokens_per_day=day, tokens_per_month=month)


def group_limit(user, name, *, day=None, month=None) -> Group:
    group = Group.objects.create(name=name)
    GroupQuota.objects.create(group=group, tokens_per_day=day, tokens_per_month=month)
    user.groups.add(group)
    return group


def counter(user, period="day") -> QuotaCounter:
    return QuotaCounter.objects.get(user=user, period=period)


def test_effective_limits_none_anywhere_is_unlimited(user):
    assert limits.effective_limits(user)["day"] == limits.Limit(None, "no limit")


def test_effective_limits_default_policy_applies(user):
    DefaultQuota.objects.create(pk=1, tokens_per_day=5_000)
    assert limits.effective_limits(user)["day"] == limits.Limit(5_000, "default policy")


def test_effective_limits_group_beats_default(user):
    DefaultQuota.objects.create(pk=1, tokens_per_day=5_000)
    group_limit(user, "Research", day=50_000)
    assert limits.effective_limits(user)["day"] == limits.Limit(50_000, "group Research")


def test_effective_limits_most_generous_group_wins(user):
    group_limit(user, "Interns", day=1_000)
    group_limit(user, "Research", day=50_000)
    assert limits.effective_limits(user)["day"].tokens == 50_000


def test_effective_limits_own_limit_beats_groups(user):
    group_limit(user, "Research", day=50_000)
    limit(user, day=2_000)
    assert limits.effective_limits(user)["day"] == limits.Limit(2_000, "own limit")


def test_effective_limits_empty_field_falls_back_per_period(user):
    DefaultQuota.objects.create(pk=1, tokens_per_month=900_000)
    limit(user, day=2_000)
    assert limits.effective_limits(user)["month"] == limits.Limit(900_000, "default policy")


def test_effective_limits_own_zero_blocks_despite_group(user):
    group_limit(user, "Research", day=50_000)
    limit(user, day=0)
    with pytest.raises(quotas.QuotaExceeded, match="switched off"):
        quotas.reserve(user=user, input_estimate=10, max_output_tokens=100)


def test_reserve_without_limits_passes_with_callers_cap(user):
    reservation = quotas.reserve(user=user, input_estimate=100, max_output_tokens=None)
    assert reservation.max_output_tokens is None


def test_reserve_without_limits_still_counts_use(user):
    reservation = quotas.reserve(user=user, input_estimate=100, max_output_tokens=400)
    quotas.settle(reservation, total_tokens=321)
    assert (counter(user).used, counter(user, "month").used) == (321, 321)


def test_reserve_holds_input_and_output(user):
    limit(user, day=10_000)
    quotas.reserve(user=user, input_estimate=300, max_output_tokens=1_000)
    assert counter(user).reserved == 1_300


def test_reserve_caps_output_to_what_remains(user):
    limit(user, day=1_000)
    reservation = quotas.reserve(user=user, input_estimate=300, max_output_tokens=4_096)
    assert reservation.max_output_tokens == 700


def test_reserve_without_cap_gets_what_remains(user):
    limit(user, month=1_000)
    reservation = quotas.reserve(user=user, input_estimate=300, max_output_tokens=None)
    assert reservation.max_output_tokens == 700


def test_reserve_caps_to_the_tighter_period(user):
    limit(user, day=10_000, month=2_000)
    reservation = quotas.reserve(user=user, input_estimate=500, max_output_tokens=8_000)
    assert reservation.max_output_tokens == 1_500


def test_reserve_refuses_when_less_than_minimum_output_remains(user):
    limit(user, day=1_000)
    with pytest.raises(quotas.QuotaExceeded, match="the 1,000 left are not enough"):
        quotas.reserve(user=user, input_estimate=985, max_output_tokens=100)


def test_reserve_accepts_exactly_minimum_output(user):
    limit(user, day=1_000)
    reservation = quotas.reserve(user=user, input_estimate=984, max_output_tokens=100)
    assert reservation.max_output_tokens == quotas.MIN_OUTPUT_TOKENS


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_quota_exceeded_message_names_daily_limit_and_local_reset(user):
    limit(user, day=10_000)
    quotas.settle(
        quotas.reserve(
            user=user, input_estimate=0, max_output_tokens=10_000, now=LAST_SECOND_OF_MARCH
        ),
        total_tokens=10_240,
    )
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.reserve(
            user=user, input_estimate=10, max_output_tokens=100, now=LAST_SECOND_OF_MARCH
        )
    assert refused.value.user_message == (
        "You have used 10,240 of your 10,000 tokens for today. It resets at 00:00 (Asia/Shanghai)."
    )


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_quota_exceeded_message_names_monthly_limit_and_date(user):
    limit(user, month=500)
    quotas.settle(
        quotas.reserve(
            user=user, input_estimate=0, max_output_tokens=500, now=LAST_SECOND_OF_MARCH
        ),
        total_tokens=500,
    )
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.reserve(
            user=user, input_estimate=10, max_output_tokens=100, now=LAST_SECOND_OF_MARCH
        )
    assert refused.value.user_message == (
        "You have used 500 of your 500 tokens for this month. "
        "It resets on 1 April at 00:00 (Asia/Shanghai)."
    )


def test_quota_exceeded_message_mentions_answers_in_progress(user):
    limit(user, day=1_000)
    quotas.reserve(user=user, input_estimate=100, max_output_tokens=800)
    with pytest.raises(quotas.QuotaExceeded, match="answers still being written hold 900 more"):
        quotas.reserve(user=user, input_estimate=100, max_output_tokens=800)


def test_settle_turns_hold_into_use(user):
    limit(user, day=10_000)
    reservation = quotas.reserve(user=user, input_estimate=300, max_output_tokens=1_000)
    quotas.settle(reservation, total_tokens=420)
    assert (counter(user).used, counter(user).reserved) == (420, 0)


def test_settle_twice_counts_once(user):
    limit(user, day=10_000)
    reservation = quotas.reserve(user=user, input_estimate=300, max_output_tokens=1_000)
    quotas.settle(reservation, total_tokens=420)
    quotas.settle(reservation, total_tokens=420)
    assert (counter(user).used, counter(user).reserved) == (420, 0)


def test_release_gives_the_hold_back(user):
    limit(user, day=10_000)
    quotas.release(quotas.reserve(user=user, input_estimate=300, max_output_tokens=1_000))
    assert (counter(user).used, counter(user).reserved) == (0, 0)


def test_next_round_charges_the_rounds_so_far_and_gets_what_is_left(user):
    limit(user, day=1_000)
    first = quotas.reserve(user=user, input_estimate=100, max_output_tokens=500)

    second = quotas.reserve_next_round(first, used_so_far=250, input_estimate=300)

    assert second.max_output_tokens == 1_000 - 250 - 300
    assert (counter(user).used, counter(user).reserved) == (250, 300 + 450)


def test_next_round_asks_for_the_first_rounds_cap_again(user):
    limit(user, day=100_000)
    first = quotas.reserve(user=user, input_estimate=100, max_output_tokens=500)

    second = quotas.reserve_next_round(first, used_so_far=250, input_estimate=300)

    assert second.max_output_tokens == 500


def test_settling_after_rounds_charges_only_the_last_round(user):
    limit(user, day=1_000)
    first = quotas.reserve(user=user, input_estimate=100, max_output_tokens=500)
    second = quotas.reserve_next_round(first, used_so_far=250, input_estimate=300)

    quotas.settle(second, total_tokens=250 + 340)

    assert (counter(user).used, counter(user).reserved) == (590, 0)


def test_next_round_without_room_is_refused_but_the_rounds_so_far_are_charged(user):
    limit(user, day=1_000)
    first = quotas.reserve(user=user, input_estimate=100, max_output_tokens=500)

    with pytest.raises(quotas.QuotaExceeded):
        quotas.reserve_next_round(first, used_so_far=700, input_estimate=290)

    assert (counter(user).used, counter(user).reserved) == (700, 0)


def test_charge_counts_use_without_a_reservation(user):
    quotas.charge(user_id=user.pk, total_tokens=37)
    assert counter(user, "month").used == 37


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_periods_reset_at_local_midnight_and_first_of_month(user):
    limit(user, day=1_000, month=1_000)
    quotas.settle(
        quotas.reserve(
            user=user, input_estimate=0, max_output_tokens=1_000, now=LAST_SECOND_OF_MARCH
        ),
        total_tokens=1_000,
    )
    reservation = quotas.reserve(
        user=user, input_estimate=10, max_output_tokens=100, now=FIRST_SECOND_OF_APRIL
    )
    assert reservation.max_output_tokens == 100


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_status_reports_local_periods_and_resets(user):
    limit(user, day=1_000)
    day, month = quotas.status(user, now=LAST_SECOND_OF_MARCH)
    assert day.resets_at == FIRST_SECOND_OF_APRIL
    assert month.resets_at == FIRST_SECOND_OF_APRIL
    assert day.reset_description == "at 00:00 (Asia/Shanghai)"


@override_settings(TIME_ZONE="America/New_York")
def test_status_day_follows_local_date_not_utc(user):
    # 02:00 UTC on 1 April is still 31 March in New York.
    day, _month = quotas.status(user, now=datetime.datetime(2026, 4, 1, 2, 0, tzinfo=UTC))
    assert day.resets_at == datetime.datetime(2026, 4, 1, 4, 0, tzinfo=UTC)


def test_status_remaining_subtracts_use_and_holds(user):
    limit(user, day=1_000)
    quotas.settle(
        quotas.reserve(user=user, input_estimate=0, max_output_tokens=500), total_tokens=200
    )
    quotas.reserve(user=user, input_estimate=100, max_output_tokens=200)
    assert quotas.status(user)[0].remaining == 500


def race_twenty_reservations(racer) -> list[str]:
    """Reserve 1,000 tokens for `racer` from 20 threads at once; return who got through."""
    start = threading.Barrier(20)

    def send() -> str:
        try:
            start.wait()
            quotas.reserve(user=racer, input_estimate=400, max_output_tokens=600)
            return "reserved"
        except quotas.QuotaExceeded:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        return sorted(future.result() for future in [pool.submit(send) for _ in range(20)])


@pytest.mark.django_db(transaction=True)
def test_reserve_lets_exactly_one_of_twenty_concurrent_turns_through(make_user):
    racer = make_user("racer")
    limit(racer, day=1_000)
    assert race_twenty_reservations(racer) == ["refused"] * 19 + ["reserved"]
    assert counter(racer).reserved == 1_000


@pytest.mark.django_db(transaction=True)
def test_reserve_holds_the_limit_when_every_racer_knows_the_counters(make_user):
    racer = make_user("racer")
    limit(racer, day=1_000)
    # One turn earlier: every racer's process now remembers the counter rows.
    quotas.release(quotas.reserve(user=racer, input_estimate=0, max_output_tokens=100))
    assert race_twenty_reservations(racer) == ["refused"] * 19 + ["reserved"]
    assert counter(racer).reserved == 1_000


def test_a_hold_that_no_longer_fits_whole_is_shrunk_to_what_is_left(user):
    limit(user, day=1_000)
    quotas.reserve(user=user, input_estimate=100, max_output_tokens=300)

    reservation = quotas.reserve(user=user, input_estimate=100, max_output_tokens=900)

    assert (reservation.amount, reservation.max_output_tokens) == (600, 500)
    assert counter(user).reserved == 1_000


def test_a_counter_the_process_remembers_wrongly_is_read_again(user, other_user):
    limit(user, day=1_000)
    first = quotas.reserve(user=user, input_estimate=100, max_output_tokens=100)
    day_id = first.counter_ids[0]
    # As if its transaction had rolled back, and SQLite had given its id to another row.
    QuotaCounter.objects.filter(user=user).delete()
    QuotaCounter.objects.create(pk=day_id, user=other_user, period="day", starts_on=date.today())

    reservation = quotas.reserve(user=user, input_estimate=100, max_output_tokens=100)

    assert counter(user).reserved == 200
    assert QuotaCounter.objects.get(pk=day_id).reserved == 0
    assert day_id not in reservation.counter_ids


def test_an_admin_change_to_a_users_quota_holds_from_the_next_turn(admin_client, user, catalogue):
    direct_turns.send(user)  # the user's limits are read, and kept

    response = admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": user.username,
            "is_active": "on",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
            "quota-TOTAL_FORMS": "1",
            "quota-INITIAL_FORMS": "0",
            "quota-MIN_NUM_FORMS": "0",
            "quota-MAX_NUM_FORMS": "1",
            "quota-0-tokens_per_day": "0",
            "quota-0-user": str(user.pk),
        },
    )

    assert response.status_code == 302
    with pytest.raises(admission.Refused, match="switched off"):
        direct_turns.send(user)


def test_joining_a_group_gives_its_limit_from_the_next_turn(user, catalogue):
    DefaultQuota.objects.create(pk=1, tokens_per_day=0)
    with pytest.raises(admission.Refused, match="switched off"):
        direct_turns.send(user)
    research = Group.objects.create(name="Research")
    GroupQuota.objects.create(group=research, tokens_per_day=1_000_000)

    research.user_set.add(user)

    assert direct_turns.send(user).plan.answer_id

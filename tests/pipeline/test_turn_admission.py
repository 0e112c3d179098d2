"""Who may start a turn now: a per-user rate, and a concurrency cap that holds in parallel.

Issue #17: 1,000 `send` frames started 56 turns in 3.8 s (only the concurrency cap
applied), and on PostgreSQL parallel sends could all pass that cap, since it counted
rows without a lock. Every turn start now locks the user's turn gate first.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from conversations.models import DefaultQuota, GroupQuota, Message, Quota, TurnGate
from conversations.pipeline import admission, starts
from tests.support import attacks
from tests.support.chat import open_socket, receive_until, send
from tests.support.direct_turns import model
from tests.support.turns import finished

pytestmark = pytest.mark.django_db(transaction=True)

ACCEPTED = 'id="turn-accepted"'
TOO_FAST = "messages in the last minute; wait a moment."


def start(user, text: str = "Hello", conversation_id: int | None = None):
    return starts.prepare_send(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=model().pk,
        instructions=None,
        worker_channel="worker-1",
    )


def starts_allowed(user, attempts: int) -> int:
    """Start `attempts` turns in new conversations; return how many were let through."""
    started = 0
    for number in range(attempts):
        try:
            start(user, f"Question {number}")
            started += 1
        except admission.Refused as refusal:
            assert TOO_FAST in refusal.user_message
    return started


def answered(frame: str) -> bool:
    """True for the reply to a send: the turn started, or why not."""
    return ACCEPTED in frame or TOO_FAST in frame


async def replies(socket, count: int) -> list[str]:
    frames = []
    while len(frames) < count:
        frames.append((await receive_until(socket, answered))[-1])
    return frames


async def test_a_burst_of_sends_starts_exactly_the_rate_limit(gateway, user, settings):
    settings.CHAT_TURNS_PER_MINUTE = 5
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    sockets = [await open_socket(user) for _ in range(3)]

    for number in range(4):
        for socket in sockets:
            await send(socket, action="send", conversation="", text=f"Burst {number}")
    frames = [frame for socket in sockets for frame in await replies(socket, 4)]

    assert sum(ACCEPTED in frame for frame in frames) == 5
    refused = [frame for frame in frames if TOO_FAST in frame]
    assert len(refused) == 7
    attacks.record(
        "12 send frames in a burst from 3 sockets, 5 turns a minute allowed",
        before="1,000 frames started 56 turns in 3.8 s",
        observed=f"{sum(ACCEPTED in frame for frame in frames)} started, {len(refused)} refused",
    )
    assert "You have sent 5 messages in the last minute; wait a moment." in refused[0]
    answers = await sync_to_async(list)(Message.objects.filter(role="assistant"))
    assert len(answers) == 5
    for answer in answers:
        await finished(answer.pk)
    for socket in sockets:
        await socket.disconnect()


def test_the_rate_limit_is_the_setting_by_default(user, catalogue, settings):
    settings.CHAT_TURNS_PER_MINUTE = 3
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100

    assert starts_allowed(user, 5) == 3


def test_an_own_rate_beats_groups_and_the_default(user, catalogue, settings):
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    DefaultQuota.objects.create(pk=1, turns_per_minute=1)
    group = Group.objects.create(name="Research")
    GroupQuota.objects.create(group=group, turns_per_minute=4)
    user.groups.add(group)
    Quota.objects.create(user=user, turns_per_minute=2)

    assert starts_allowed(user, 5) == 2


def test_the_most_generous_group_rate_beats_the_default(user, catalogue, settings):
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    DefaultQuota.objects.create(pk=1, turns_per_minute=1)
    for name, rate in (("Interns", 2), ("Research", 4)):
        group = Group.objects.create(name=name)
        GroupQuota.objects.create(group=group, turns_per_minute=rate)
        user.groups.add(group)

    assert starts_allowed(user, 6) == 4


def test_turns_older_than_a_minute_no_longer_count(user, catalogue, settings):
    settings.CHAT_TURNS_PER_MINUTE = 2
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    assert starts_allowed(user, 2) == 2
    gate = TurnGate.objects.get(user=user)
    gate.recent_starts = [at - 61 for at in gate.recent_starts]
    gate.save()

    assert starts_allowed(user, 3) == 2


def test_a_refused_turn_does_not_count_against_the_rate(user, catalogue, settings):
    settings.CHAT_TURNS_PER_MINUTE = 2
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    blocked = Quota.objects.create(user=user, tokens_per_day=0)
    for _attempt in range(3):
        with pytest.raises(admission.Refused, match="switched off"):
            start(user)
    blocked.delete()

    assert starts_allowed(user, 3) == 2


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite runs one write transaction at a time (IMMEDIATE), so sends cannot "
    "overlap there; the race needs PostgreSQL's concurrent transactions",
)
def test_twenty_parallel_sends_start_at_most_the_concurrency_cap(make_user, catalogue, settings):
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 3
    settings.CHAT_TURNS_PER_MINUTE = 100
    racer = make_user("racer")
    model_id = model().pk
    ready = threading.Barrier(20)

    def send_one(number: int) -> str:
        try:
            ready.wait()
            starts.prepare_send(
                user=racer,
                conversation_id=None,
                text=f"Parallel {number}",
                model_id=model_id,
                instructions=None,
                worker_channel="worker-1",
            )
            return "started"
        except admission.Refused as refusal:
            assert "You already have 3 answers being generated" in refusal.user_message
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(send_one, range(20)))

    assert outcomes.count("started") == 3
    assert Message.objects.filter(role="assistant", status="streaming").count() == 3
    attacks.record(
        "20 sends at once on PostgreSQL, 3 concurrent answers allowed",
        before="10 started",
        observed=f"{outcomes.count('started')} started",
    )


def test_an_admin_sets_the_site_wide_rate_in_the_default_quota(admin_client, user, catalogue):
    admin_client.post(
        reverse("admin:conversations_defaultquota_add"),
        {"tokens_per_day": "", "tokens_per_month": "", "turns_per_minute": "2"},
    )

    assert starts_allowed(user, 4) == 2


def test_the_group_admin_offers_a_rate_for_members(admin_client, db):
    group = Group.objects.create(name="Research")
    GroupQuota.objects.create(group=group, turns_per_minute=7)

    page = admin_client.get(reverse("admin:auth_group_change", args=[group.pk])).content.decode()

    assert "Messages per minute" in page and 'value="7"' in page

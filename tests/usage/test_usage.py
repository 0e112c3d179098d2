"""Usage records: cost arithmetic, the token estimate, daily totals and the /usage/ page."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from conversations.models import ModelChoice, Quota, UsageRecord
from conversations.usage import quotas
from conversations.usage.charts import bar_chart
from conversations.usage.ledger import (
    DailyTotal,
    cost_of,
    daily_totals,
    estimate_tokens,
    record_usage,
)
from conversations.usage.periods import local_today
from tests.support.usage import record

UTC = datetime.UTC


@pytest.fixture
def model(db) -> ModelChoice:
    return ModelChoice.objects.create(
        upstream_id="sim-chat",
        label="Sim Chat",
        price_input=Decimal("2.00"),
        price_cached_input=Decimal("0.50"),
        price_output=Decimal("8.00"),
    )


def test_cost_of_bills_uncached_cached_and_output_at_their_prices(model):
    cost = cost_of(model, input_tokens=1_000, cached_tokens=400, output_tokens=500)
    assert cost == Decimal("0.005400")  # (600 * 2 + 400 * 0.5 + 500 * 8) / 1e6


def test_cost_of_million_output_tokens_is_the_output_price(model):
    assert cost_of(model, input_tokens=0, cached_tokens=0, output_tokens=1_000_000) == 8


def test_cost_of_without_catalogue_entry_is_zero():
    assert cost_of(None, input_tokens=10, cached_tokens=0, output_tokens=10) == 0


def test_record_usage_saves_tokens_and_cost(user, model):
    saved = record(user, model, input_tokens=1_000, output_tokens=500, tokens=1_500)
    assert (saved.total_tokens, saved.cost, saved.model_name) == (
        1_500,
        Decimal("0.006"),
        "sim-chat",
    )


def test_record_usage_keeps_the_price_of_its_time(user, model):
    saved = record(user, model, input_tokens=0, output_tokens=1_000_000, tokens=1_000_000)
    ModelChoice.objects.filter(pk=model.pk).update(price_output=100)
    saved.refresh_from_db()
    assert saved.cost == 8


def test_record_usage_finds_catalogue_entry_by_name(user, model):
    assert record(user, None, model_name="sim-chat").model == model


def test_record_usage_keeps_purpose_and_estimate_flag(user, model):
    saved = record_usage(
        user_id=user.pk,
        conversation_id=None,
        message=None,
        model_choice=model,
        model_name="sim-chat",
        input_tokens=12,
        cached_tokens=0,
        output_tokens=3,
        reasoning_tokens=0,
        total_tokens=15,
        estimated=True,
        purpose=UsageRecord.Purpose.TITLE,
    )
    assert (saved.purpose, saved.estimated) == ("title", True)


def test_estimate_tokens_latin_is_four_characters_a_token():
    assert estimate_tokens("abcdefgh") == 2


def test_estimate_tokens_rounds_up():
    assert estimate_tokens("hello") == 2


def test_estimate_tokens_cjk_is_one_a_character():
    assert estimate_tokens("你好\uff0c世界") == 5  # a full-width comma counts as CJK


def test_estimate_tokens_mixed_text_adds_both_rules():
    assert estimate_tokens("你好 hello") == 2 + 2


def test_estimate_tokens_empty_is_zero():
    assert estimate_tokens("") == 0


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_daily_totals_group_by_local_day(user, model):
    saved = record(user, model, tokens=700)
    # 17:00 UTC on 31 March is 01:00 on 1 April in Shanghai.
    UsageRecord.objects.filter(pk=saved.pk).update(
        created_at=datetime.datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    )
    days = daily_totals(
        UsageRecord.objects.all(), first=datetime.date(2026, 3, 31), last=datetime.date(2026, 4, 1)
    )
    assert [day.total_tokens for day in days] == [0, 700]


def test_daily_totals_sum_an_ordered_queryset(user, model):
    for tokens in (100, 200, 300):
        record(user, model, tokens=tokens)
    today = local_today()
    days = daily_totals(UsageRecord.objects.order_by("-created_at", "-pk"), first=today, last=today)
    assert [day.total_tokens for day in days] == [600]


def test_usage_page_chart_sums_every_record_of_the_day(client, user, model):
    for tokens in (1_000, 2_000, 4_000):
        record(user, model, tokens=tokens)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert "Busiest day: 7,000 tokens" in page


def test_bar_chart_scales_busiest_day_to_full_height():
    totals = [
        DailyTotal(datetime.date(2026, 4, day), tokens, Decimal(0))
        for day, tokens in ((1, 50), (2, 100))
    ]
    chart = bar_chart(totals, height=124)
    assert [bar.height for bar in chart.bars] == [50, 100]


def test_bar_chart_keeps_tiny_days_visible():
    totals = [
        DailyTotal(datetime.date(2026, 4, day), tokens, Decimal(0))
        for day, tokens in ((1, 1), (2, 10_000))
    ]
    assert bar_chart(totals).bars[0].height > 0


def test_usage_page_shows_todays_tokens_and_cost(client, user, model):
    record(user, model, input_tokens=1_000, output_tokens=234, tokens=1_234)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert 'data-testid="tokens-today">1,234<' in page
    assert "$0.0039" in page  # (1000 * 2 + 234 * 8) / 1e6 = 0.003872


def test_usage_page_lists_models_of_the_month(client, user, model):
    record(user, model, tokens=100)
    record(user, None, model_name="sim-mini", tokens=50)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert "sim-chat" in page and "sim-mini" in page


def test_usage_page_names_models_by_their_label(client, user, model):
    record(user, model, tokens=100)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert '<span title="sim-chat">Sim Chat</span>' in page


def test_usage_page_shows_quota_and_reset(client, user, model):
    Quota.objects.create(user=user, tokens_per_day=10_000)
    record(user, model, tokens=1_234)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert "of 10,000 tokens" in page and "resets at 00:00 (UTC)" in page


def test_usage_page_shows_the_quota_used_as_a_meter_past_its_high_mark(client, user):
    Quota.objects.create(user=user, tokens_per_day=10_000)
    quotas.charge(user_id=user.pk, total_tokens=9_500)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert 'class="quota-meter" min="0" max="100" low="90" high="90" optimum="0" value="95"' in page


def test_usage_page_draws_the_chart(client, user, model):
    record(user, model, tokens=1_234)
    client.force_login(user)
    assert '<rect class="usage-chart-bar"' in client.get(reverse("usage")).content.decode()


def test_usage_page_leaves_out_titles_which_the_quota_does_not_count(client, user, model):
    record(user, model, tokens=10)
    record(user, model, tokens=42, purpose=UsageRecord.Purpose.TITLE)
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert 'data-testid="tokens-today">10<' in page


def test_usage_page_shows_only_own_records(client, user, other_user, model):
    record(other_user, model, tokens=98_765)
    client.force_login(user)
    assert "98,765" not in client.get(reverse("usage")).content.decode()


def test_usage_page_requires_sign_in(client, db):
    assert client.get(reverse("usage")).status_code == 302


def test_usage_page_leaves_out_records_older_than_the_month(client, user, model):
    saved = record(user, model, tokens=4_321)
    UsageRecord.objects.filter(pk=saved.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )
    client.force_login(user)
    page = client.get(reverse("usage")).content.decode()
    assert 'data-testid="tokens-today">0<' in page and "4,321" not in page

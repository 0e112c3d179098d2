"""The admin: catalogue default switching, quota pages, the usage report and its CSV."""

from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import override_settings
from django.urls import reverse

from conversations.models import DefaultQuota, GroupQuota, ModelChoice, Quota, UsageRecord
from conversations.usage.ledger import record_usage

REPORT = reverse("admin:conversations_usagerecord_changelist")
EXPORT = reverse("admin:conversations_usagerecord_export")


@pytest.fixture
def model(db) -> ModelChoice:
    return ModelChoice.objects.create(
        upstream_id="sim-chat", label="Sim Chat", is_default=True, price_output=Decimal("8")
    )


@pytest.fixture
def staff(make_user):
    """Return a factory for staff users holding only the named permissions."""

    def make(*codenames: str):
        member = make_user("staffer", is_staff=True)
        member.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        return member

    return make


def record(user, *, tokens=1_000, model_name="sim-chat", **extra) -> UsageRecord:
    return record_usage(
        user_id=user.pk,
        conversation_id=None,
        message=None,
        model_choice=None,
        model_name=model_name,
        input_tokens=0,
        cached_tokens=0,
        output_tokens=tokens,
        reasoning_tokens=0,
        total_tokens=tokens,
        estimated=False,
        **extra,
    )


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def model_form(**overrides) -> dict:
    return {
        "label": "Sim Mini",
        "upstream_id": "sim-mini",
        "enabled": "on",
        "position": "20",
        "reasoning_efforts": "",
        "default_reasoning_effort": "",
        "max_output_tokens": "4096",
        "price_input": "0.1",
        "price_cached_input": "0.025",
        "price_output": "0.4",
        "context_mode": "auto",
        **overrides,
    }


def test_catalogue_list_shows_prices_and_capabilities(admin_client, model):
    page = admin_client.get(reverse("admin:conversations_modelchoice_changelist")).content.decode()
    assert "sim-chat" in page and "0 / 0 / 8" in page and "text only" in page


def test_an_admin_marks_a_model_as_taking_files(admin_client, model):
    change = reverse("admin:conversations_modelchoice_change", args=[model.pk])

    assert 'name="supports_files"' in admin_client.get(change).content.decode()
    admin_client.post(
        change, model_form(label="Sim Chat", upstream_id="sim-chat", supports_files="on")
    )

    model.refresh_from_db()
    assert model.supports_files is True
    page = admin_client.get(reverse("admin:conversations_modelchoice_changelist")).content.decode()
    assert "files" in page


def test_catalogue_new_default_unsets_the_old_one(admin_client, model):
    admin_client.post(reverse("admin:conversations_modelchoice_add"), model_form(is_default="on"))
    assert list(
        ModelChoice.objects.filter(is_default=True).values_list("upstream_id", flat=True)
    ) == ["sim-mini"]


def test_catalogue_change_page_moves_the_default_to_another_model(admin_client, model):
    mini = ModelChoice.objects.create(upstream_id="sim-mini", label="Sim Mini")
    change = reverse("admin:conversations_modelchoice_change", args=[mini.pk])

    response = admin_client.post(change, model_form(is_default="on"))

    assert response.status_code == 302  # saved, not sent back with an error
    assert ModelChoice.objects.get(is_default=True) == mini


def test_catalogue_change_page_shows_and_clears_the_default(admin_client, model):
    change = reverse("admin:conversations_modelchoice_change", args=[model.pk])

    page = admin_client.get(change).content.decode()
    admin_client.post(change, model_form(label="Sim Chat", upstream_id="sim-chat"))

    assert re.search(r'<input type="checkbox" name="is_default"[^>]* checked', page)
    assert not ModelChoice.objects.filter(is_default=True).exists()


def test_catalogue_default_action_moves_the_mark(admin_client, model):
    mini = ModelChoice.objects.create(upstream_id="sim-mini", label="Sim Mini")
    admin_client.post(
        reverse("admin:conversations_modelchoice_changelist"),
        {"action": "mark_default", "_selected_action": [mini.pk]},
    )
    assert ModelChoice.objects.get(is_default=True) == mini


def test_catalogue_position_is_editable_in_the_list(admin_client, model):
    admin_client.post(
        reverse("admin:conversations_modelchoice_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(model.pk),
            "form-0-position": "7",
            "form-0-enabled": "on",
            "_save": "Save",
        },
    )
    model.refresh_from_db()
    assert model.position == 7


def test_user_admin_shows_limits_and_current_use(admin_client, user):
    Quota.objects.create(user=user, tokens_per_day=10_000)
    record(user, tokens=0)
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "Own token limits" in page and "of 10,000" in page and "own limit" in page


def test_user_admin_says_no_limit_once_per_period(admin_client, user):
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    standing = page[page.index('<table class="quota-standing">') :]
    standing = standing[: standing.index("</table>")]
    assert standing.count("no limit") == 2  # today and this month, once each


def test_user_admin_hides_use_without_quota_permission(client, staff, user):
    client.force_login(staff("view_user", "change_user"))
    page = client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "Token quota" not in page


def test_group_admin_edits_member_limits(admin_client, db):
    group = Group.objects.create(name="Research")
    GroupQuota.objects.create(group=group, tokens_per_day=50_000)
    page = admin_client.get(reverse("admin:auth_group_change", args=[group.pk])).content.decode()
    assert "Token limits for members" in page and 'value="50000"' in page


def test_default_quota_is_a_single_row(admin_client, db):
    DefaultQuota.objects.create(pk=1, tokens_per_day=1)
    assert admin_client.get(reverse("admin:conversations_defaultquota_add")).status_code == 403


def test_default_quota_first_save_is_the_policy_row(admin_client, db):
    admin_client.post(
        reverse("admin:conversations_defaultquota_add"),
        {"tokens_per_day": "20000", "tokens_per_month": ""},
    )
    assert DefaultQuota.objects.get().pk == 1


def test_usage_report_shows_totals_per_user_and_model(admin_client, user, other_user, model):
    record(user, tokens=1_500)
    record(other_user, tokens=500, model_name="sim-mini")
    page = admin_client.get(REPORT).content.decode()
    assert 'data-testid="report-tokens">2,000<' in page
    assert "lena" in page and "sim-mini" in page and '<rect class="usage-chart-bar"' in page


def test_usage_report_chart_sums_every_record_of_the_day(admin_client, user, other_user, model):
    for tokens in (1_000, 2_000, 4_000):
        record(user, tokens=tokens)
    record(other_user, tokens=983)
    page = admin_client.get(REPORT).content.decode()
    assert 'data-testid="report-tokens">7,983<' in page
    assert "Busiest day: 7,983 tokens" in page


def test_usage_report_per_model_sums_every_record(admin_client, user, other_user, model):
    record(user, tokens=1_000)
    record(other_user, tokens=2_000)
    page = admin_client.get(REPORT).content.decode()
    per_model = page[page.index("Per model") :]
    assert "3,000" in per_model


def test_usage_report_says_how_much_went_on_titles(admin_client, user, model):
    record(user, tokens=1_000)
    record(user, tokens=42, purpose=UsageRecord.Purpose.TITLE)
    page = admin_client.get(REPORT).content.decode()
    assert 'data-testid="report-tokens">1,042<' in page
    assert "of which titles: 42" in page


def test_usage_report_names_models_by_their_label(admin_client, user, model):
    record(user, tokens=1_000)
    page = admin_client.get(REPORT).content.decode()
    assert '<span title="sim-chat">Sim Chat</span>' in page


def test_usage_report_orders_totals_by_cost(admin_client, user, other_user, model):
    record(user, tokens=1_000, model_name="sim-chat")  # priced: 8 per million
    record(other_user, tokens=5_000, model_name="unpriced")
    page = admin_client.get(REPORT, {"totals": "cost"}).content.decode()
    per_model = page[page.index("Per model") :]
    assert per_model.index("sim-chat") < per_model.index("unpriced")


def test_usage_report_filters_by_group(admin_client, user, other_user, db):
    group = Group.objects.create(name="Research")
    user.groups.add(group)
    record(user, tokens=1_111)
    record(other_user, tokens=2_222)
    page = admin_client.get(REPORT, {"group": group.pk}).content.decode()
    assert 'data-testid="report-tokens">1,111<' in page


@override_settings(TIME_ZONE="Asia/Shanghai")
def test_usage_report_date_range_uses_local_days(admin_client, user):
    early, late = record(user, tokens=100), record(user, tokens=200)
    # 15:30 UTC on 1 April is 23:30 there; 16:30 UTC is already 2 April.
    UsageRecord.objects.filter(pk=early.pk).update(
        created_at=datetime.datetime(2026, 4, 1, 15, 30, tzinfo=datetime.UTC)
    )
    UsageRecord.objects.filter(pk=late.pk).update(
        created_at=datetime.datetime(2026, 4, 1, 16, 30, tzinfo=datetime.UTC)
    )
    page = admin_client.get(
        REPORT, {"created_from": "2026-04-01", "created_to": "2026-04-01"}
    ).content.decode()
    assert 'data-testid="report-tokens">100<' in page


def test_usage_report_refuses_staff_without_view_permission(client, staff, user):
    client.force_login(staff("view_modelchoice"))
    assert client.get(REPORT).status_code == 403


def test_usage_report_allows_staff_with_view_permission(client, staff, user):
    client.force_login(staff("view_usagerecord"))
    assert client.get(REPORT).status_code == 200


def test_usage_records_are_read_only(admin_client, user):
    saved = record(user)
    page = admin_client.get(reverse("admin:conversations_usagerecord_change", args=[saved.pk]))
    assert b'name="total_tokens"' not in page.content


def test_csv_export_refuses_staff_without_view_permission(client, staff, user):
    client.force_login(staff("view_modelchoice"))
    assert client.get(EXPORT).status_code == 403


def test_csv_export_writes_header_and_rows(admin_client, user, model):
    record(user, tokens=1_000)
    rows = csv_rows(admin_client.get(EXPORT))
    assert rows[0][:4] == ["time", "user", "model", "assistant"]
    assert rows[1][1:5] == ["ming", "sim-chat", "", "answer"]
    assert rows[1][9:11] == ["1000", "0.008000"]


def test_csv_export_follows_the_filters(admin_client, user, other_user, db):
    record(user)
    record(other_user)
    rows = csv_rows(admin_client.get(EXPORT, {"user__id__exact": other_user.pk}))
    assert [row[1] for row in rows[1:]] == ["lena"]


def test_csv_export_rejects_unknown_filters(admin_client, db):
    assert admin_client.get(EXPORT, {"nonsense": "1"}).status_code == 400


def test_csv_action_exports_the_selected_records(admin_client, user):
    chosen, _other = record(user, tokens=10), record(user, tokens=20)
    response = admin_client.post(REPORT, {"action": "export_csv", "_selected_action": [chosen.pk]})
    assert [row[9] for row in csv_rows(response)[1:]] == ["10"]


def test_csv_quotes_cells_a_spreadsheet_would_run(admin_client, make_user):
    record(make_user("-evil"))
    assert csv_rows(admin_client.get(EXPORT))[1][1] == "'-evil"

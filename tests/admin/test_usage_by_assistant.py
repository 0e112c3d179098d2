"""The usage report by assistant: its filter, its totals table and the CSV column."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from conversations.admin.usage import AssistantFilter
from conversations.assistants.library import record_version
from conversations.models import Assistant, UsageRecord
from conversations.usage.ledger import totals, totals_by

REPORT = reverse("admin:conversations_usagerecord_changelist")
EXPORT = reverse("admin:conversations_usagerecord_export")


@pytest.fixture
def writer(user) -> Assistant:
    return record_version(Assistant(owner=user, name="Writer"))


def record(user, tokens: int, assistant: Assistant | None = None, **extra) -> UsageRecord:
    """A record as the pipeline makes one: the assistant and the name it had."""
    return UsageRecord.objects.create(
        user=user,
        model_name="sim-chat",
        assistant=assistant,
        assistant_name=assistant.name if assistant else "",
        output_tokens=tokens,
        total_tokens=tokens,
        **extra,
    )


@pytest.fixture
def usage(user, other_user, writer) -> None:
    coder = record_version(Assistant(owner=other_user, name="Coder"))
    record(user, 1_000, writer)
    record(other_user, 2_000, writer)
    record(other_user, 400, coder)
    record(user, 30)


def per_assistant(page: str) -> str:
    return page[page.index("Per assistant") :]


def test_report_totals_per_assistant(admin_client, usage):
    page = per_assistant(admin_client.get(REPORT).content.decode())
    assert "Writer" in page and "3,000" in page and "Coder" in page and "No assistant" in page


def test_filter_by_assistant_name(admin_client, usage):
    page = admin_client.get(REPORT, {"assistant": "Writer"}).content.decode()
    assert 'data-testid="report-tokens">3,000<' in page


def test_filter_no_assistant(admin_client, usage):
    page = admin_client.get(REPORT + "?assistant=").content.decode()
    assert 'data-testid="report-tokens">30<' in page


def test_filter_keeps_a_deleted_assistants_records(admin_client, usage, writer):
    writer.delete()
    page = admin_client.get(REPORT, {"assistant": "Writer"}).content.decode()
    assert 'data-testid="report-tokens">3,000<' in page


def test_filter_offers_the_names_in_the_records(rf, admin_user, usage):
    lookups = AssistantFilter(rf.get(REPORT), {}, UsageRecord, None).lookup_choices
    assert [value for value, _label in lookups] == ["", "Coder", "Writer"]


def test_per_assistant_totals_sum_to_the_per_user_ones(usage):
    records = UsageRecord.objects.all()
    by_assistant = totals_by(records, "assistant_name")
    by_user = totals_by(records, "user__username")
    for key in ("total_tokens", "cost", "responses"):
        assert sum(row[key] for row in by_assistant) == sum(row[key] for row in by_user)
    assert sum(row["total_tokens"] for row in by_assistant) == totals(records)["total_tokens"]


def test_report_tables_agree_on_the_total(admin_client, usage):
    tables = admin_client.get(REPORT).context["report_tables"]
    sums = {str(heading): sum(row["total_tokens"] for row in rows) for heading, rows, _ in tables}
    assert set(sums.values()) == {3_430}


def test_csv_has_the_assistant_after_the_model(admin_client, usage):
    rows = list(csv.reader(io.StringIO(admin_client.get(EXPORT).content.decode())))
    assert rows[0][2:4] == ["model", "assistant"]
    assert sorted(row[3] for row in rows[1:]) == ["", "Coder", "Writer", "Writer"]


def test_csv_follows_the_assistant_filter(admin_client, usage):
    rows = list(
        csv.reader(io.StringIO(admin_client.get(EXPORT, {"assistant": "Coder"}).content.decode()))
    )
    assert [row[3] for row in rows[1:]] == ["Coder"]


def test_csv_quotes_an_assistant_name_a_spreadsheet_would_run(admin_client, user):
    record(user, 10, record_version(Assistant(owner=user, name="=SUM(A1)")))
    rows = list(csv.reader(io.StringIO(admin_client.get(EXPORT).content.decode())))
    assert rows[1][3] == "'=SUM(A1)"

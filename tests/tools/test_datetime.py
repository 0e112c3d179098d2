"""get_current_time: the time in a zone, from an injectable clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conversations.tools import ToolContext, run_call

NOW = datetime(2025, 3, 4, 7, 30, 15, 123456, tzinfo=UTC)  # a Tuesday


def ask(timezone: str, now: datetime = NOW):
    return run_call(
        "get_current_time", json.dumps({"timezone": timezone}), ToolContext(now=lambda: now)
    )


def test_current_time_in_shanghai():
    assert json.loads(ask("Asia/Shanghai").output) == {
        "timezone": "Asia/Shanghai",
        "iso": "2025-03-04T15:30:15+08:00",
        "weekday": "Tuesday",
        "utc_offset": "+08:00",
        "abbreviation": "CST",
    }


def test_current_time_negative_half_hour_offset():
    answer = json.loads(ask("America/St_Johns").output)
    assert answer["utc_offset"] == "-03:30" and answer["iso"] == "2025-03-04T04:00:15-03:30"


def test_current_time_crosses_the_date_line():
    answer = json.loads(ask("Pacific/Kiritimati").output)
    assert answer["iso"].startswith("2025-03-04T21:30") and answer["utc_offset"] == "+14:00"


def test_current_time_follows_daylight_saving():
    summer = datetime(2025, 7, 1, 12, tzinfo=UTC)
    answer = json.loads(ask("Europe/Berlin", summer).output)
    assert answer["utc_offset"] == "+02:00" and answer["abbreviation"] == "CEST"


def test_current_time_fixes_the_case_of_a_zone():
    assert json.loads(ask(" europe/berlin ").output)["timezone"] == "Europe/Berlin"


def test_current_time_treats_a_naive_clock_as_utc():
    naive = datetime(2025, 3, 4, 7, 30)
    assert json.loads(ask("UTC", naive).output)["iso"] == "2025-03-04T07:30:00+00:00"


def test_current_time_unknown_zone_names_it():
    result = ask("Mars/Olympus_Mons")
    assert not result.ok and "'Mars/Olympus_Mons'" in json.loads(result.output)["error"]


def test_current_time_refuses_paths_and_non_zone_files():
    for name in ("/etc/passwd", "../../etc/passwd", "zone.tab", "America", ""):
        assert "unknown time zone" in json.loads(ask(name).output)["error"]


def test_current_time_clips_a_huge_name_in_the_error():
    assert len(ask("x" * 5000).output) < 300

"""How members are named and drawn: display names and avatar initials."""

from __future__ import annotations

import pytest

from conversations.groups.people import display_name, initials


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mei Lin", "ML"),
        ("mei", "M"),
        ("jean-luc picard the third", "JP"),
        ("first.last", "FL"),
        ("王小明", "小明"),
        ("王 小明", "小明"),
        ("林", "林"),
        ("", "?"),
    ],
)
def test_initials(name, expected):
    assert initials(name) == expected


def test_display_name_prefers_the_full_name_and_joins_chinese_without_a_space(make_user):
    assert display_name(make_user("mei", first_name="Mei", last_name="Lin")) == "Mei Lin"
    assert display_name(make_user("wang", first_name="王", last_name="小明")) == "王小明"
    assert display_name(make_user("plain")) == "plain"

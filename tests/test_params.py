"""Ids from clients: whole positive ASCII numbers in the key's range, or refused."""

from __future__ import annotations

import pytest

from conversations.params import MAX_ID, clean_text, is_share_token, parse_id


@pytest.mark.parametrize(("value", "expected"), [("12", 12), (12, 12), (None, None), ("", None)])
def test_parse_id_reads_ids_and_nothing(value, expected):
    assert parse_id(value) == expected


@pytest.mark.parametrize(
    "value",
    ["1.5", 1.5, 3.0, True, "١٢", "1_000", " 7", "-1", 0, -3, MAX_ID + 1, "9" * 20, [], {}],
)
def test_parse_id_refuses_what_is_not_an_id(value):
    """`int()` once read 1.5 as message 1 and Arabic-Indic digits as a number."""
    with pytest.raises(ValueError):
        parse_id(value)


def test_parse_id_takes_the_largest_key():
    assert parse_id(str(MAX_ID)) == MAX_ID


def test_clean_text_drops_nul_only():
    assert clean_text("a\x00b\tc\n") == "ab\tc\n"


@pytest.mark.parametrize("token", ["", "a/b", "a\x00b", "x" * 65, "abc def"])
def test_a_token_of_the_wrong_shape_is_not_looked_up(token):
    assert not is_share_token(token)

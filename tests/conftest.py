"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def make_user(db):
    """Return a factory for users with a known password."""

    def make(username: str = "ming", **extra):
        return get_user_model().objects.create_user(username, password="pw-for-tests-123", **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user("ming")


@pytest.fixture
def other_user(make_user):
    return make_user("lena")


def pytest_collection_modifyitems(config, items):
    """Run browser tests last.

    Playwright's sync API keeps an event loop running in the main thread for as long as
    the session-wide browser lives, and pytest-asyncio cannot start its own loop beside
    it; putting the browser tests at the end keeps the two apart.
    """
    items.sort(key=lambda item: "tests/browser/" in str(item.path))

"""Quotas in Chromium: an admin sets a user's daily limit; the user's chat obeys it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Message, Quota
from conversations.usage import quotas
from tests.support.browser import (
    RECORDER_JS,
    STORY,
    add_model,
    latest_answer_id,
    send_message,
    wait_for_socket,
    wait_for_status,
)

ADMIN_PASSWORD = "admin-pw-for-tests-123"


@pytest.fixture
def admin_page(page, live_server_ws):
    """A superuser signed in to the admin through its own login form."""
    get_user_model().objects.create_superuser("boss", "", ADMIN_PASSWORD)
    page.goto(f"{live_server_ws.url}/admin/login/?next=/admin/")
    page.locator("#id_username").fill("boss")
    page.locator("#id_password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_ws.url}/admin/")
    return page


@pytest.fixture
def user_page(browser, make_user, login):
    """The regular user's chat page, in a browser context of its own."""
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    make_user("ming")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.add_init_script(RECORDER_JS)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    yield page
    context.close()


def set_daily_limit(admin_page, base_url: str, user, tokens: int) -> None:
    """Open the user's change page, type the limit into the quota inline and save."""
    admin_page.goto(f"{base_url}/admin/auth/user/{user.pk}/change/")
    admin_page.locator("#id_quota-0-tokens_per_day").fill(str(tokens))
    admin_page.get_by_role("button", name="Save", exact=True).click()
    admin_page.wait_for_url(f"{base_url}/admin/auth/user/")
    assert "was changed successfully" in admin_page.locator(".messagelist").inner_text()


def test_admin_limit_refuses_then_allows_the_users_message(
    admin_page, user_page, live_server_ws, artifacts_dir
):
    base_url = live_server_ws.url
    user = get_user_model().objects.get(username="ming")

    set_daily_limit(admin_page, base_url, user, 1)
    assert Quota.objects.get(user=user).tokens_per_day == 1

    send_message(user_page, STORY)
    error = user_page.locator("#composer-error .error[role=alert]")
    error.wait_for()
    text = " ".join(error.inner_text().split())
    day = quotas.status(user)[0]
    assert day.period == "day"
    assert "of your 1 token for today" in text, text
    assert f"It resets {day.reset_description}." in text, text
    # chat.js puts the refused text back once the socket has delivered the error.
    user_page.wait_for_function(
        "(text) => document.querySelector('#composer-text').value === text", arg=STORY
    )
    # The question stays where it was drawn, as an error that keeps its text.
    failed = user_page.locator("article.message-user.status-failed")
    assert failed.locator(".message-body").inner_text().strip() == STORY
    assert "of your 1 token for today" in " ".join(failed.inner_text().split())
    assert user_page.locator("article.message-assistant").count() == 0
    assert not user_page.locator(".send-button").is_disabled()
    assert not Message.objects.filter(conversation__owner=user).exists()
    user_page.screenshot(path=str(artifacts_dir / "quota-refused.png"))

    set_daily_limit(admin_page, base_url, user, 1_000_000)
    assert Quota.objects.get(user=user).tokens_per_day == 1_000_000

    user_page.locator("#composer-text").press("Enter")
    answer = latest_answer_id(user_page)
    wait_for_status(user_page, answer, "complete")
    assert user_page.locator("#composer-error .error").count() == 0
    assert user_page.locator("#composer-text").input_value() == ""
    # Sent again, the message takes the failed one's place: one question, saved.
    assert user_page.locator("article.message-user .message-body").inner_text().strip() == STORY
    assert user_page.locator("article.message-user.status-failed").count() == 0
    assert Message.objects.get(pk=answer).status == "complete"

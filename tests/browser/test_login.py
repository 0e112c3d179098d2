from __future__ import annotations

from django.contrib.auth import get_user_model


def test_login_demo_admin_reaches_chat_page(page, live_server_ws, login, artifacts_dir):
    get_user_model().objects.create_superuser("admin", "", "chatweb-demo")

    login(page, "admin", "chatweb-demo")

    assert page.get_by_role("heading", name="What can I help with?").is_visible()
    page.screenshot(path=str(artifacts_dir / "chat-empty.png"))


def test_login_wrong_password_shows_error(page, live_server_ws, make_user):
    make_user("ming")
    page.goto(f"{live_server_ws.url}/accounts/login/")
    page.get_by_label("Username").fill("ming")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()

    assert page.get_by_role("alert").is_visible()

"""Single sign-on in Chromium: a real provider, its login page, chatweb with its groups."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from chatweb.sso.models import Identity
from conversations.models import GroupQuota, ModelChoice
from tests.servers import free_port, start_server
from tests.sso.provider import PASSWORD, start_identity_provider
from tests.support.browser import RECORDER_JS, STORY, add_model, send_message, wait_for_socket

CLIENT_ID = "chatweb-browser"
CLIENT_SECRET = "browser-client-secret-for-tests"


@pytest.fixture(scope="module")
def sso_site(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    """An identity provider and a chatweb server configured to trust it."""
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    provider = start_identity_provider(
        tmp_path_factory.mktemp("idp-browser"),
        {
            CLIENT_ID: {
                "secret": CLIENT_SECRET,
                "redirect_uris": [f"{site}/accounts/oidc/company/callback/"],
                "post_logout_redirect_uris": [f"{site}/accounts/login/"],
            }
        },
    )
    env = {
        "OIDC_PROVIDERS": "company",
        "OIDC_COMPANY_ISSUER": provider.issuer,
        "OIDC_COMPANY_CLIENT_ID": CLIENT_ID,
        "OIDC_COMPANY_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_COMPANY_LABEL": "Example Corp",
        "OIDC_GROUP_PREFIX": "chatweb-",
        "PASSWORD_LOGIN": "staff-only",
    }
    with django_db_blocker.unblock():
        server = start_server(artifacts_dir, extra_env=env, port=port)
    yield server, provider
    server.stop()
    provider.stop()


def test_sign_in_at_the_provider_lands_in_chat_with_the_groups_quota(sso_site, page, artifacts_dir):
    server, provider = sso_site
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    research = Group.objects.create(name="chatweb-research")
    GroupQuota.objects.create(group=research, tokens_per_day=1)
    # Models limited to groups: one for the provider's group, one for another.
    add_model("sim-mini", "Research Mini", position=5).groups.add(research)
    finance = Group.objects.create(name="chatweb-finance")
    add_model("sim-reasoner", "Finance Reasoner", position=6).groups.add(finance)
    page.add_init_script(RECORDER_JS)

    page.goto(f"{server.url}/accounts/login/")
    page.screenshot(path=str(artifacts_dir / "sso-login.png"))
    page.get_by_role("link", name="Sign in with Example Corp").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in to the provider").click()
    page.wait_for_url(f"{server.url}/")
    wait_for_socket(page)

    ada = get_user_model().objects.get(username="ada")
    assert list(ada.groups.values_list("name", flat=True)) == ["chatweb-research"]
    assert Identity.objects.get(user=ada).provider == "company"
    assert ModelChoice.objects.exists()
    offered = page.eval_on_selector_all("#composer-model option", "els => els.map(e => e.text)")
    assert "Research Mini" in offered  # the group's model, through the provider's claim
    assert "Finance Reasoner" not in offered
    send_message(page, STORY)
    error = page.locator("#composer-error .error[role=alert]")
    error.wait_for()
    assert "of your 1 token for today" in " ".join(error.inner_text().split())

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.url}/accounts/login/")
    # The provider's session ended too: signing in again asks for the password.
    page.get_by_role("link", name="Sign in with Example Corp").click()
    page.get_by_label("Password").wait_for()
    assert page.url.startswith(provider.url)


def test_passwords_are_for_staff_only_when_configured(sso_site, page, make_user):
    server, _ = sso_site
    make_user("worker")

    page.goto(f"{server.url}/accounts/login/")
    page.get_by_text("Staff: sign in with a password").click()
    page.get_by_label("Username").fill("worker")
    page.get_by_label("Password").fill("pw-for-tests-123")
    page.get_by_role("button", name="Sign in", exact=True).click()

    page.get_by_text("passwords are for staff only").wait_for()

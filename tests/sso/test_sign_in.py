"""Signing in through a real OpenID Connect provider (django-oauth-toolkit, own process)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from chatweb.sso.models import Identity, ProvidedMembership
from tests.sso.conftest import ProviderBrowser, local_path

User = get_user_model()
pytestmark = pytest.mark.django_db


def signed_in_name(client) -> str | None:
    user = client.get("/").wsgi_request.user
    return user.username if user.is_authenticated else None


def assert_refused(response, caplog, status: int, words: str) -> None:
    assert response.status_code == status
    assert words in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert any("Sign-in through company refused" in r.getMessage() for r in caplog.records)


def test_login_page_offers_the_provider(company, client):
    page = client.get("/accounts/login/").content.decode()

    assert "Sign in with Company" in page
    assert "/accounts/oidc/company/login/" in page


def test_first_sign_in_creates_the_user_with_prefixed_groups(company, sign_in_at, client):
    response = sign_in_at("ada")

    assert response.status_code == 302 and response.headers["location"] == "/"
    ada = User.objects.get(username="ada")
    assert (ada.first_name, ada.email) == ("Ada Lovelace", "ada@example.com")
    assert sorted(ada.groups.values_list("name", flat=True)) == ["chatweb-research"]
    assert not ada.has_usable_password()
    assert signed_in_name(client) == "ada"


def test_later_sign_in_replaces_provider_groups_and_keeps_manual_ones(company, sign_in_at):
    sign_in_at("grace")
    grace = User.objects.get(username="grace")
    grace.groups.add(Group.objects.create(name="given-by-admin"))
    company.set_groups("grace", ["chatweb-support", "chatweb-writers"])
    try:
        sign_in_at("grace")
    finally:
        company.set_groups("grace", ["chatweb-research", "chatweb-support"])

    names = sorted(grace.groups.values_list("name", flat=True))
    assert names == ["chatweb-support", "chatweb-writers", "given-by-admin"]
    identity = Identity.objects.get(user=grace)
    assert identity.groups_synced_at is not None
    assert sorted(m.group.name for m in identity.memberships.all()) == [
        "chatweb-support",
        "chatweb-writers",
    ]


def test_groups_are_not_created_unless_allowed(company, settings, sign_in_at):
    settings.OIDC_RULES = replace(settings.OIDC_RULES, create_groups=False)
    Group.objects.create(name="chatweb-support")

    sign_in_at("grace")

    assert list(User.objects.get(username="grace").groups.values_list("name", flat=True)) == [
        "chatweb-support"
    ]
    assert not Group.objects.filter(name="chatweb-research").exists()


def test_a_later_sign_in_updates_name_and_email(company, sign_in_at):
    sign_in_at("ada")
    User.objects.filter(username="ada").update(first_name="Old", email="old@example.com")

    sign_in_at("ada")

    ada = User.objects.get(username="ada")
    assert (ada.first_name, ada.email) == ("Ada Lovelace", "ada@example.com")


def test_a_matching_email_never_takes_over_a_local_account(company, sign_in_at, make_user):
    local = make_user("ada-local", email="ada@example.com")

    sign_in_at("ada")

    assert Identity.objects.get(provider="company").user.username == "ada"
    assert not Identity.objects.filter(user=local).exists()


def test_a_user_name_taken_by_a_local_account_is_refused_whole(
    company, sign_in_at, make_user, client, caplog
):
    make_user("ming")

    response = sign_in_at("ming")

    assert_refused(response, caplog, 400, "already exists")
    assert User.objects.count() == 1
    assert not Identity.objects.exists()
    assert signed_in_name(client) is None


def test_a_deactivated_user_stays_out(company, sign_in_at, client, caplog):
    sign_in_at("ada")
    User.objects.filter(username="ada").update(is_active=False)

    assert signed_in_name(client) is None  # the open session ends too
    response = sign_in_at("ada")

    assert_refused(response, caplog, 403, "deactivated")
    assert signed_in_name(client) is None


def test_email_domains_restrict_who_may_sign_in(company, settings, sign_in_at, caplog):
    settings.OIDC_RULES = replace(settings.OIDC_RULES, allowed_email_domains=("example.com",))

    response = sign_in_at("eve")

    assert_refused(response, caplog, 403, "may not use chatweb")
    assert not User.objects.exists()
    assert sign_in_at("ada").status_code == 302


def test_required_groups_restrict_who_may_sign_in(company, settings, sign_in_at, caplog):
    settings.OIDC_RULES = replace(settings.OIDC_RULES, required_groups=("chatweb-support",))

    response = sign_in_at("ada")

    assert_refused(response, caplog, 403, "may not use chatweb")
    assert not User.objects.exists()
    assert sign_in_at("grace").status_code == 302


def test_a_wrong_state_is_refused(company, client, caplog):
    start = client.get("/accounts/oidc/company/login/")
    back = ProviderBrowser().authorize(start.headers["location"], "ada")
    forged = local_path(back).replace("state=", "state=forged")

    response = client.get(forged)

    assert_refused(response, caplog, 400, "took too long")
    assert not User.objects.exists()


def test_a_replayed_code_is_refused(company, client, caplog):
    start = client.get("/accounts/oidc/company/login/")
    back = ProviderBrowser().authorize(start.headers["location"], "ada")
    assert client.get(local_path(back)).status_code == 302
    client.post("/accounts/logout/")

    # Replayed as is: its state was spent with the first use.
    assert_refused(client.get(local_path(back)), caplog, 400, "took too long")
    # Replayed under a fresh state of this session: the provider refuses the spent code.
    fresh = client.get("/accounts/oidc/company/login/").headers["location"]
    state = dict(pair.split("=", 1) for pair in fresh.split("?", 1)[1].split("&"))["state"]
    code = dict(pair.split("=", 1) for pair in back.split("?", 1)[1].split("&"))["code"]
    response = client.get(f"/accounts/oidc/company/callback/?code={code}&state={state}")

    assert_refused(response, caplog, 400, "did not let you sign in")
    assert signed_in_name(client) is None


@pytest.mark.parametrize(
    ("fault", "logged"),
    [
        ("other-issuer", "Invalid issuer"),
        ("expired", "expired"),
        ("unknown-kid", "a-key-nobody-published"),
        ("token-not-json", "not JSON"),
        ("jwks-not-json", "not JSON"),
    ],
)
def test_an_untrustworthy_answer_is_refused_with_a_clear_page(
    company, sign_in_at, caplog, fault, logged
):
    company.set_fault(fault)

    response = sign_in_at("ada")

    assert_refused(response, caplog, 502, "cannot trust")
    assert logged in caplog.text
    assert not User.objects.exists() and not Identity.objects.exists()


def test_a_broken_discovery_document_is_refused(company, client, caplog):
    company.set_fault("discovery-not-json")

    response = client.get("/accounts/oidc/company/login/")

    assert_refused(response, caplog, 502, "cannot trust")


def test_clock_skew_is_tolerated(company, settings, sign_in_at):
    # The expired fault dates the token an hour back; two hours of allowed skew cover it.
    settings.OIDC_RULES = replace(settings.OIDC_RULES, clock_skew_seconds=7200)
    company.set_fault("expired")

    assert sign_in_at("ada").status_code == 302


def test_a_missing_groups_claim_is_refused(company, sign_in_at, caplog):
    response = sign_in_at("nogroups")

    assert_refused(response, caplog, 400, "did not say which groups")
    assert not User.objects.exists()


def test_a_huge_groups_claim_is_refused_without_creating_groups(company, sign_in_at, caplog):
    response = sign_in_at("many")

    assert_refused(response, caplog, 400, "more groups than chatweb accepts")
    assert not User.objects.exists()
    assert not Group.objects.exists()


def test_a_provider_that_is_down_gets_a_clear_page(company, settings, client, caplog):
    from tests.servers import free_port

    down = replace(settings.OIDC_PROVIDERS[0], issuer=f"http://127.0.0.1:{free_port()}/o")
    settings.OIDC_PROVIDERS = (down,)

    response = client.get("/accounts/oidc/company/login/")

    assert_refused(response, caplog, 502, "cannot be reached")


def test_an_unknown_provider_is_not_found(company, client):
    assert client.get("/accounts/oidc/nobody/login/").status_code == 404


def test_sign_out_ends_the_provider_session_too(company, sign_in_at, client):
    sign_in_at("ada")

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response.headers["location"].startswith(f"{company.issuer}/logout/?")
    assert "id_token_hint=" in response.headers["location"]
    assert signed_in_name(client) is None


def test_password_sign_in_can_be_kept_for_staff_only(company, settings, client, make_user):
    settings.OIDC_RULES = replace(settings.OIDC_RULES, password_login="staff-only")
    make_user("worker")
    make_user("operator", is_staff=True)
    form = {"password": "pw-for-tests-123"}

    refused = client.post("/accounts/login/", {**form, "username": "worker"})
    assert "passwords are for staff only" in refused.content.decode()
    assert client.post("/accounts/login/", {**form, "username": "operator"}).status_code == 302


def test_the_sign_in_is_logged_without_secrets(company, sign_in_at, caplog):
    with caplog.at_level(logging.INFO):
        sign_in_at("ada")

    assert "through company" in caplog.text
    assert "company-secret-for-tests-only" not in caplog.text


def test_admin_lists_groups_from_the_provider(company, sign_in_at, admin_client):
    sign_in_at("ada")

    page = admin_client.get("/admin/sso/identity/").content.decode()
    memberships = admin_client.get("/admin/sso/providedmembership/").content.decode()

    assert "chatweb-research" in page and "ada" in page
    assert "chatweb-research" in memberships
    assert ProvidedMembership.objects.count() == 1

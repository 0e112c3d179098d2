"""Provider settings from the environment: a mistake stops start-up with one line."""

from __future__ import annotations

import pytest

from chatweb.env import EnvError
from chatweb.sso.config import providers_from_env, rules_from_env
from tests.support.checks import run_check

COMPANY = {
    "OIDC_PROVIDERS": "company",
    "OIDC_COMPANY_ISSUER": "https://sso.example.com/realms/staff",
    "OIDC_COMPANY_CLIENT_ID": "chatweb",
    "OIDC_COMPANY_CLIENT_SECRET": "s3cret",
}


def set_env(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_providers_are_read_with_defaults(monkeypatch):
    set_env(
        monkeypatch,
        {
            **COMPANY,
            "OIDC_PROVIDERS": "company,contractor",
            "OIDC_CONTRACTOR_ISSUER": "https://login.example.net/t/v2.0",
            "OIDC_CONTRACTOR_CLIENT_ID": "c",
            "OIDC_CONTRACTOR_CLIENT_SECRET": "s",
            "OIDC_CONTRACTOR_GROUPS_CLAIM": "",
            "OIDC_COMPANY_LABEL": "Example Corp",
        },
    )

    company, contractor = providers_from_env()

    assert (company.label, company.scopes, company.groups_claim) == (
        "Example Corp",
        "openid profile email",
        "groups",
    )
    assert (contractor.label, contractor.groups_claim) == ("Contractor", "")


def test_no_providers_by_default(monkeypatch):
    monkeypatch.delenv("OIDC_PROVIDERS", raising=False)

    assert providers_from_env() == ()
    assert rules_from_env().password_login == "everyone"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OIDC_PROVIDERS": "Company!"}, "OIDC_PROVIDERS"),
        ({"OIDC_PROVIDERS": "company,company"}, "OIDC_PROVIDERS"),
        ({"OIDC_COMPANY_ISSUER": ""}, "OIDC_COMPANY_ISSUER"),
        ({"OIDC_COMPANY_ISSUER": "ftp://sso.example.com"}, "OIDC_COMPANY_ISSUER"),
        ({"OIDC_COMPANY_CLIENT_SECRET": ""}, "OIDC_COMPANY_CLIENT_SECRET"),
        ({"OIDC_COMPANY_SCOPES": "profile email"}, "OIDC_COMPANY_SCOPES"),
    ],
)
def test_a_malformed_provider_names_its_variable(monkeypatch, env, variable):
    set_env(monkeypatch, {**COMPANY, **env})

    with pytest.raises(EnvError) as raised:
        providers_from_env()
    assert raised.value.name == variable


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PASSWORD_LOGIN": "nobody"}, "PASSWORD_LOGIN"),
        ({"OIDC_ALLOWED_EMAIL_DOMAINS": "example.com,not a domain"}, "OIDC_ALLOWED_EMAIL_DOMAINS"),
        ({"OIDC_CREATE_GROUPS": "sometimes"}, "OIDC_CREATE_GROUPS"),
        ({"OIDC_MAX_GROUPS": "0"}, "OIDC_MAX_GROUPS"),
    ],
)
def test_malformed_rules_name_their_variable(monkeypatch, env, variable):
    set_env(monkeypatch, env)

    with pytest.raises(EnvError) as raised:
        rules_from_env()
    assert raised.value.name == variable


def test_start_up_stops_with_one_line_naming_the_variable():
    result = run_check(DEBUG="1", **{**COMPANY, "OIDC_COMPANY_ISSUER": ""})

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "chatweb: configuration error: OIDC_COMPANY_ISSUER: must be set for provider 'company'"
    ], result.stderr

"""The identity providers and sign-in rules, read from the environment.

`OIDC_PROVIDERS=company,contractor` names the providers; each one's settings are
`OIDC_<NAME>_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`, `_SCOPES`, `_USERNAME_CLAIM`,
`_GROUPS_CLAIM` and `_LABEL`. A mistake stops start-up with one line naming the
variable (chatweb/env.py), not at the first sign-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chatweb.env import EnvError, env_bool, env_int, env_list, env_str, env_url

__all__ = ["Provider", "SignInRules", "origin_of", "providers_from_env", "rules_from_env"]

PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
EVERYONE, STAFF_ONLY = "everyone", "staff-only"
PASSWORD_LOGIN_MODES = (EVERYONE, STAFF_ONLY)


@dataclass(frozen=True)
class Provider:
    """One identity provider chatweb trusts, as its admin configured it."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    label: str
    scopes: str = "openid profile email"
    username_claim: str = "preferred_username"
    # Empty: the provider sends no groups (Google), so memberships are left alone.
    groups_claim: str = "groups"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class SignInRules:
    """Who may sign in through a provider, and which of their groups chatweb keeps."""

    # "staff-only": only staff may use a password (break-glass when the provider is down).
    password_login: str = EVERYONE
    allowed_email_domains: tuple[str, ...] = ()
    required_groups: tuple[str, ...] = ()
    group_prefix: str = ""
    create_groups: bool = False
    max_groups: int = 1000
    clock_skew_seconds: int = 120
    timeout_seconds: int = 10

    @property
    def passwords_for_staff_only(self) -> bool:
        return self.password_login == STAFF_ONLY


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def provider_from_env(name: str) -> Provider:
    if not PROVIDER_NAME.match(name):
        raise EnvError(
            "OIDC_PROVIDERS",
            f"{name!r} is not a provider name: use lower-case letters, digits and _",
        )
    prefix = f"OIDC_{name.upper()}_"
    issuer = env_url(prefix + "ISSUER", schemes=("https", "http"))
    if not issuer:
        raise EnvError(prefix + "ISSUER", f"must be set for provider {name!r}")
    for part in ("CLIENT_ID", "CLIENT_SECRET"):
        if not env_str(prefix + part):
            raise EnvError(prefix + part, f"must be set for provider {name!r}")
    scopes = env_str(prefix + "SCOPES") or "openid profile email"
    if "openid" not in scopes.split():
        raise EnvError(prefix + "SCOPES", f"must include 'openid', got {scopes!r}")
    username_claim = env_str(prefix + "USERNAME_CLAIM") or "preferred_username"
    return Provider(
        name=name,
        issuer=issuer,
        client_id=env_str(prefix + "CLIENT_ID"),
        client_secret=env_str(prefix + "CLIENT_SECRET"),
        label=env_str(prefix + "LABEL") or name.replace("_", " ").title(),
        scopes=scopes,
        username_claim=username_claim,
        groups_claim=env_str(prefix + "GROUPS_CLAIM", "groups"),
    )


def providers_from_env() -> tuple[Provider, ...]:
    """Return the providers named by OIDC_PROVIDERS, in that order."""
    names = [name.lower() for name in env_list("OIDC_PROVIDERS", [])]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise EnvError("OIDC_PROVIDERS", f"names {sorted(duplicates)[0]!r} twice")
    return tuple(provider_from_env(name) for name in names)


def rules_from_env() -> SignInRules:
    password_login = env_str("PASSWORD_LOGIN", "everyone").lower()
    if password_login not in PASSWORD_LOGIN_MODES:
        raise EnvError(
            "PASSWORD_LOGIN", f"expected 'everyone' or 'staff-only', got {password_login!r}"
        )
    domains = tuple(
        domain.lower().lstrip("@") for domain in env_list("OIDC_ALLOWED_EMAIL_DOMAINS", [])
    )
    for domain in domains:
        if "." not in domain or "/" in domain or " " in domain:
            raise EnvError("OIDC_ALLOWED_EMAIL_DOMAINS", f"{domain!r} is not a domain name")
    return SignInRules(
        password_login=password_login,
        allowed_email_domains=domains,
        required_groups=tuple(env_list("OIDC_REQUIRED_GROUPS", [])),
        group_prefix=env_str("OIDC_GROUP_PREFIX"),
        create_groups=env_bool("OIDC_CREATE_GROUPS", default=False),
        max_groups=env_int("OIDC_MAX_GROUPS", 1000, minimum=1),
        clock_skew_seconds=env_int("OIDC_CLOCK_SKEW_SECONDS", 120),
        timeout_seconds=env_int("OIDC_TIMEOUT_SECONDS", 10, minimum=1),
    )

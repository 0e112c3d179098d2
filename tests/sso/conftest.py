"""A real OpenID Connect provider for the sign-in tests, and a browser for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from chatweb.sso import discovery
from chatweb.sso.config import Provider, SignInRules
from tests.sso.provider import PASSWORD, RunningProvider, start_identity_provider

CLIENT_ID = "chatweb-company"
CLIENT_SECRET = "company-secret-for-tests-only"
CALLBACK = "http://testserver/accounts/oidc/company/callback/"


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory) -> Iterator[RunningProvider]:
    clients = {
        CLIENT_ID: {
            "secret": CLIENT_SECRET,
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": ["http://testserver/accounts/login/"],
        }
    }
    provider = start_identity_provider(tmp_path_factory.mktemp("idp"), clients)
    yield provider
    provider.stop()


@pytest.fixture
def company(identity_provider, settings) -> Iterator[RunningProvider]:
    """chatweb configured with the test provider as `company`, faults off."""
    settings.OIDC_PROVIDERS = (
        Provider(
            name="company",
            issuer=identity_provider.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            label="Company",
        ),
    )
    settings.OIDC_RULES = SignInRules(
        group_prefix="chatweb-", create_groups=True, timeout_seconds=5
    )
    discovery.forget()
    identity_provider.set_fault("")
    yield identity_provider
    identity_provider.set_fault("")
    discovery.forget()


class ProviderBrowser:
    """Play the browser's part at the provider: its own cookies, the provider's login form."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=30)

    def authorize(self, authorize_url: str, username: str) -> str:
        """Sign in at the provider and return the URL it sends the browser back to."""
        response = self.http.get(authorize_url)
        if response.status_code == 302 and "/accounts/login/" in response.headers["location"]:
            login_url = httpx.URL(authorize_url).join(response.headers["location"])
            page = self.http.get(login_url)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = self.http.post(
                login_url,
                data={
                    "csrfmiddlewaretoken": token,
                    "username": username,
                    "password": PASSWORD,
                    "next": login_url.params["next"],
                },
            )
            assert response.status_code == 302, response.text
            response = self.http.get(httpx.URL(authorize_url).join(response.headers["location"]))
        assert response.status_code == 302, response.text
        return response.headers["location"]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def sign_in_at(client):
    """Return sign_in(username) -> chatweb's answer to the provider's redirect back."""

    def sign_in(username: str, *, browser: ProviderBrowser | None = None):
        start = client.get("/accounts/oidc/company/login/")
        assert start.status_code == 302, start.content
        back = (browser or ProviderBrowser()).authorize(start.headers["location"], username)
        return client.get(local_path(back))

    return sign_in

"""Exchange a provider's code for tokens and trust them only once fully checked.

mozilla-django-oidc exchanges the code (with the PKCE verifier) and picks the signing
key from the provider's JWKS by key id and algorithm. It does not check the ID token's
issuer or audience or allow for clock skew, and reads one provider from settings; so
the endpoints come from discovery per provider, and `verify_token` decodes with every
check OpenID Connect Core 3.1.3.7 asks for. Every way the provider's answer can be
wrong ends in a `SignInFailed` naming it, never in a traceback.
"""

from __future__ import annotations

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from chatweb.sso import accounts, discovery
from chatweb.sso.config import Provider
from chatweb.sso.errors import SignInFailed

__all__ = ["ProviderBackend", "callback_url"]

# Asymmetric only: an HS256 token would be "signed" with our own client secret.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


def callback_url(request: HttpRequest, provider: Provider) -> str:
    """Return the redirect URI to register at the provider."""
    return request.build_absolute_uri(reverse("sso-callback", args=[provider.name]))


def excerpt(text: str) -> str:
    return text[:300].replace("\n", " ")


class ProviderBackend(OIDCAuthenticationBackend):
    """Sign people in through a configured provider; loads their sessions afterwards."""

    def __init__(self, *args, **kwargs) -> None:
        # The parent reads one provider from settings here; ours come per sign-in.
        self.UserModel = get_user_model()
        self.rules = settings.OIDC_RULES

    def get_settings(self, attr, *args):
        fixed = {
            "OIDC_TIMEOUT": self.rules.timeout_seconds,
            "OIDC_VERIFY_SSL": True,
            "OIDC_PROXY": None,
            "OIDC_TOKEN_USE_BASIC_AUTH": False,
        }
        if attr in fixed:
            return fixed[attr]
        return super().get_settings(attr, *args)

    def authenticate(self, request, **credentials):
        """Take no part in `django.contrib.auth.authenticate`: see `sign_in`."""
        return None

    def get_user(self, user_id):
        # The parent returns inactive users too, which would keep a deactivated
        # user's open sessions working.
        return ModelBackend.get_user(self, user_id)

    def sign_in(
        self, request: HttpRequest, *, provider: Provider, code: str, nonce: str, code_verifier: str
    ):
        """Return (user, ID token) for the code the provider sent back."""
        self.request = request
        self.provider = provider
        self.endpoints = discovery.endpoints(provider, timeout=self.rules.timeout_seconds)
        self.OIDC_OP_TOKEN_ENDPOINT = self.endpoints.token
        self.OIDC_OP_JWKS_ENDPOINT = self.endpoints.jwks
        self.OIDC_OP_USER_ENDPOINT = self.endpoints.userinfo
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = provider.client_secret
        tokens = self.exchange(code, code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("bad_answer", "the token response has no id_token")
        payload = self.verify_token(id_token, nonce=nonce)
        claims = self.claims(tokens.get("access_token"), id_token, payload)
        return accounts.sign_in(provider, self.rules, claims), id_token

    def exchange(self, code: str, code_verifier: str) -> dict:
        payload = {
            "client_id": self.provider.client_id,
            "client_secret": self.provider.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback_url(self.request, self.provider),
            "code_verifier": code_verifier,
        }
        try:
            tokens = self.get_token(payload)
        except requests.HTTPError as error:
            # A spent or forged code, a wrong verifier or secret: the provider says which.
            response = error.response
            raise SignInFailed(
                "denied",
                f"token endpoint answered {response.status_code}: {excerpt(response.text)}",
            ) from None
        except requests.exceptions.JSONDecodeError:
            raise SignInFailed("bad_answer", "the token response is not JSON") from None
        except requests.RequestException as error:
            raise SignInFailed("unreachable", f"token endpoint: {type(error).__name__}") from None
        if not isinstance(tokens, dict):
            raise SignInFailed("bad_answer", "the token response is not a JSON object")
        return tokens

    def verify_token(self, token, **kwargs):
        """Return the ID token's claims once its signature, issuer, audience, times and
        nonce are checked."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise SignInFailed("bad_answer", "the ID token is not a JWT") from None
        if algorithm not in SIGNING_ALGORITHMS:
            raise SignInFailed("bad_answer", f"the ID token is signed with {algorithm!r}")
        key = self.signing_key(token)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.provider.client_id,
                issuer=self.endpoints.issuer,
                leeway=self.rules.clock_skew_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise SignInFailed("bad_answer", f"ID token refused: {error}") from None
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        if len(audiences) > 1 and payload.get("azp") != self.provider.client_id:
            raise SignInFailed("bad_answer", "ID token for several audiences without our azp")
        if payload.get("nonce") != kwargs.get("nonce"):
            raise SignInFailed("bad_answer", "the ID token's nonce is not the one we sent")
        return payload

    def signing_key(self, token: str):
        try:
            return self.retrieve_matching_jwk(token)
        except SuspiciousOperation:
            kid = jwt.get_unverified_header(token).get("kid")
            raise SignInFailed("bad_answer", f"no key {kid!r} in the provider's JWKS") from None
        except requests.exceptions.JSONDecodeError:
            raise SignInFailed("bad_answer", "the JWKS is not JSON") from None
        except requests.RequestException as error:
            raise SignInFailed("unreachable", f"JWKS: {type(error).__name__}") from None
        except (KeyError, TypeError, ValueError, jwt.PyJWTError) as error:
            raise SignInFailed("bad_answer", f"unusable JWKS: {type(error).__name__}") from None

    def claims(self, access_token, id_token: str, payload: dict) -> dict:
        """Return the ID token's claims completed by the userinfo endpoint's."""
        if not self.endpoints.userinfo or not isinstance(access_token, str):
            return payload
        try:
            userinfo = self.get_userinfo(access_token, id_token, payload)
        except SignInFailed:
            raise
        except requests.exceptions.JSONDecodeError:
            raise SignInFailed("bad_answer", "the userinfo answer is not JSON") from None
        except requests.RequestException as error:
            raise SignInFailed("unreachable", f"userinfo: {type(error).__name__}") from None
        if not isinstance(userinfo, dict):
            raise SignInFailed("bad_answer", "the userinfo answer is not a JSON object")
        if userinfo.get("sub") != payload["sub"]:
            # OpenID Connect Core 5.3.2: otherwise the answer is about someone else.
            raise SignInFailed("bad_answer", "userinfo names another subject")
        return {**payload, **userinfo}

"""Sign-in pages: the provider buttons, the round trip to the provider, sign-out.

Views only move the request along; the checks live in `backend` and `accounts`. A
refused sign-in renders one page saying what happened in words a person can act on,
and logs one line with the details an admin needs.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.crypto import get_random_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from mozilla_django_oidc.utils import (
    add_state_and_verifier_and_nonce_to_session,
    generate_code_challenge,
)

from chatweb.sso import discovery
from chatweb.sso.backend import ProviderBackend, callback_url
from chatweb.sso.config import Provider
from chatweb.sso.errors import SignInFailed

__all__ = ["LoginView", "begin", "callback", "logout"]

logger = logging.getLogger(__name__)

BACKEND = "chatweb.sso.backend.ProviderBackend"
STATUS = {"unreachable": 502, "bad_answer": 502, "not_allowed": 403, "deactivated": 403}


def provider_named(name: str | None) -> Provider | None:
    return next((p for p in settings.OIDC_PROVIDERS if p.name == name), None)


def with_query(url: str, params: dict) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def refused(request: HttpRequest, provider_name: str, failure: SignInFailed) -> HttpResponse:
    logger.warning(
        "Sign-in through %s refused (%s): %s", provider_name, failure.code, failure.detail
    )
    return render(
        request,
        "registration/sso_failed.html",
        {"message": failure.message},
        status=STATUS.get(failure.code, 400),
    )


class LoginView(auth_views.LoginView):
    """Django's sign-in page with a button per provider."""

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "sso_providers": settings.OIDC_PROVIDERS,
            "password_staff_only": settings.OIDC_RULES.passwords_for_staff_only,
        }


@login_not_required
@require_GET
def begin(request: HttpRequest, provider: str) -> HttpResponse:
    """Send the browser to the provider with a fresh state, nonce and PKCE challenge."""
    chosen = provider_named(provider)
    if chosen is None:
        raise Http404
    try:
        endpoints = discovery.endpoints(chosen, timeout=settings.OIDC_RULES.timeout_seconds)
    except SignInFailed as failure:
        return refused(request, chosen.name, failure)
    state = get_random_string(32)
    verifier = get_random_string(64)
    params = {
        "response_type": "code",
        "scope": chosen.scopes,
        "client_id": chosen.client_id,
        "redirect_uri": callback_url(request, chosen),
        "state": state,
        "nonce": get_random_string(32),
        "code_challenge": generate_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256",
    }
    add_state_and_verifier_and_nonce_to_session(request, state, params, verifier)
    # The callback must come back for the provider the flow started with.
    request.session["oidc_states"][state]["provider"] = chosen.name
    request.session.modified = True
    next_url = request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    request.session["oidc_login_next"] = next_url if safe else ""
    return HttpResponseRedirect(with_query(endpoints.authorization, params))


@login_not_required
@require_GET
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    """Finish the sign-in the provider sent the browser back from."""
    chosen = provider_named(provider)
    if chosen is None:
        raise Http404
    state = request.GET.get("state", "")
    # Popped whatever happens next, so a code or state is never accepted twice.
    flow = request.session.get("oidc_states", {}).pop(state, None)
    request.session.modified = True
    if flow is None or flow.get("provider") != chosen.name:
        return refused(request, chosen.name, SignInFailed("expired", "state not in this session"))
    if request.GET.get("error") or not request.GET.get("code"):
        error = request.GET.get("error", "no code")
        return refused(request, chosen.name, SignInFailed("denied", f"provider said {error!r}"))
    try:
        user, id_token = ProviderBackend().sign_in(
            request,
            provider=chosen,
            code=request.GET["code"],
            nonce=flow["nonce"],
            code_verifier=flow["code_verifier"],
        )
    except SignInFailed as failure:
        return refused(request, chosen.name, failure)
    next_url = request.session.get("oidc_login_next") or resolve_url(settings.LOGIN_REDIRECT_URL)
    auth.login(request, user, backend=BACKEND)
    # After login, which empties a session that belonged to someone else.
    request.session["sso_provider"] = chosen.name
    request.session["sso_id_token"] = id_token
    logger.info("Signed in user %s through %s", user.pk, chosen.name)
    return HttpResponseRedirect(next_url)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """End the chatweb session, then the provider's where it offers end_session_endpoint."""
    chosen = provider_named(request.session.get("sso_provider"))
    id_token = request.session.get("sso_id_token")
    auth.logout(request)
    signed_out = resolve_url(settings.LOGOUT_REDIRECT_URL)
    if chosen is None:
        return HttpResponseRedirect(signed_out)
    try:
        endpoints = discovery.endpoints(chosen, timeout=settings.OIDC_RULES.timeout_seconds)
    except SignInFailed as failure:
        logger.warning("Provider %s sign-out skipped: %s", chosen.name, failure.detail)
        return HttpResponseRedirect(signed_out)
    if not endpoints.end_session:
        return HttpResponseRedirect(signed_out)
    params = {
        "client_id": chosen.client_id,
        "post_logout_redirect_uri": request.build_absolute_uri(signed_out),
    }
    if id_token:
        params["id_token_hint"] = id_token
    return HttpResponseRedirect(with_query(endpoints.end_session, params))

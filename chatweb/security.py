"""Security helpers: the CSP nonce for templates, throttled sign-in forms, the Origin check.

The sign-in forms count every attempt before checking its password
(chatweb/login_throttle.py) and refuse one over the limit without checking it at all,
so a correct guess during the lock-out reveals nothing. The address they count by is
the one chatweb/clientaddress.py put in the ASGI scope, never a header the client wrote.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from django.utils.translation import gettext_lazy as _

from chatweb.login_throttle import LoginThrottle

__all__ = [
    "LoginThrottle",
    "SameOriginValidator",
    "ThrottledAdminAuthenticationForm",
    "ThrottledAuthenticationForm",
    "csp_nonce",
]


def csp_nonce(request: HttpRequest) -> dict:
    """Template context: `csp_nonce`, which django-htmx's `{% htmx_script %}` reads too."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address, as TrustedProxyAddress resolved it."""
    return request.META.get("REMOTE_ADDR") if request is not None else None


class ThrottledLoginMixin:
    """Count the attempt, then refuse it unchecked if its name or address tried too often."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": _(
            "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # nothing is checked, so nothing to count
        throttle = LoginThrottle(username, client_ip(self.request))
        if not throttle.admit():
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": settings.LOGIN_THROTTLE_MINUTES},
            )
        cleaned = super().clean()
        throttle.succeeded()
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """The sign-in page's form."""


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's sign-in form."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": ThrottledLoginMixin.error_messages["throttled"],
    }


class SameOriginValidator:
    """Accept a websocket only from a page of this very site, as Django's CSRF check does.

    Channels' `AllowedHostsOriginValidator` compares only the Origin's host name with
    ALLOWED_HOSTS, so a page served from another port of the same host (another app on
    `localhost:8001`, say) could open a socket carrying our cookies, which are not
    port-bound. Here the Origin must be one of CSRF_TRUSTED_ORIGINS, or name an allowed
    host with the same host and port as the request's Host header. A missing Origin, the
    opaque `null` origin (sandboxed frames, `data:` pages) and non-web schemes are refused.
    """

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not self.allowed(scope):
            # Reject before the handshake completes: the same answer as Channels' validator.
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)

    @staticmethod
    def allowed(scope) -> bool:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        origin = headers.get("origin", "").strip()
        if not origin or origin == "null":
            return False
        if origin in settings.CSRF_TRUSTED_ORIGINS:
            return True
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        if not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
            return False
        host = headers.get("host")
        if host is None:
            # Every HTTP/1.1 handshake has a Host header; only in-process test
            # communicators omit it, and there the host name check above is all we can do.
            return True
        default_port = 443 if parts.scheme == "https" else 80
        host_name, host_port = split_domain_port(host)
        if not host_name:
            return False
        return host_name == parts.hostname.lower() and int(host_port or default_port) == (
            port or default_port
        )

"""Security helpers: the CSP nonce for templates, and login throttling.

Login throttling counts failed sign-ins per (username, client IP) in Django's default
cache, which is Redis when REDIS_URL is set, so every process shares the count. After
LOGIN_THROTTLE_FAILURES failures within LOGIN_THROTTLE_MINUTES, that pair is refused
with a clear message until the window ends, without checking the password at all, so a
correct guess during the lock-out reveals nothing. A successful sign-in clears the count.
The window is fixed: it starts at the first failure and is not extended by later ones.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from django.utils.translation import gettext_lazy as _

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


class LoginThrottle:
    """Failed sign-ins for one (username, IP) pair, counted in the cache."""

    def __init__(self, username: str, ip_address: str | None) -> None:
        identity = f"{username.strip().casefold()}\0{ip_address or '-'}"
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
        self.key = f"login-failures:{digest}"

    @property
    def limit(self) -> int:
        return settings.LOGIN_THROTTLE_FAILURES

    @property
    def window_seconds(self) -> int:
        return settings.LOGIN_THROTTLE_MINUTES * 60

    def failures(self) -> int:
        return int(cache.get(self.key, 0))

    def is_blocked(self) -> bool:
        return self.failures() >= self.limit

    def record_failure(self) -> int:
        """Count one failure; the window starts at the first failure."""
        cache.add(self.key, 0, timeout=self.window_seconds)
        try:
            return cache.incr(self.key)
        except ValueError:  # expired between add and incr
            cache.set(self.key, 1, timeout=self.window_seconds)
            return 1

    def reset(self) -> None:
        cache.delete(self.key)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address (Daphne's --proxy-headers puts the forwarded one here)."""
    return request.META.get("REMOTE_ADDR") if request is not None else None


class ThrottledLoginMixin:
    """Refuse a (username, IP) pair that failed too often, before checking the password."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": _(
            "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        throttle = LoginThrottle(username, client_ip(self.request))
        if username and throttle.is_blocked():
            raise forms.ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": settings.LOGIN_THROTTLE_MINUTES},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if username and getattr(error, "code", None) == "invalid_login":
                throttle.record_failure()
            raise
        if username:
            throttle.reset()
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

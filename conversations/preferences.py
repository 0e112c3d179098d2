"""Remember each user's interface language on their account, across devices.

Django's `set_language` keeps a choice in a cookie, which lives on one browser. The
sidebar posts to `set_language` here instead, which also saves the choice as the user's
`UserPreference`; signing in copies it into the session, and the middleware applies it
and refreshes the cookie, so a new device shows the chosen language at once. Someone who
never chose follows their browser (Accept-Language) through LocaleMiddleware.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

__all__ = [
    "SESSION_KEY",
    "PreferredLanguageMiddleware",
    "restore_language",
    "set_language",
]

SESSION_KEY = "chatweb_language"


def supported(code: str | None) -> bool:
    return bool(code) and code in dict(settings.LANGUAGES)


@login_not_required
@require_POST
def set_language(request):
    """Switch the interface language, and keep the choice on a signed-in account."""
    response = django_set_language(request)
    code = request.POST.get("language")
    if supported(code) and request.user.is_authenticated:
        from conversations.models import UserPreference

        UserPreference.objects.update_or_create(user=request.user, defaults={"language": code})
        request.session[SESSION_KEY] = code
    return response


def restore_language(sender, request, user, **kwargs) -> None:
    """Copy the account's language into the new session (a `user_logged_in` receiver)."""
    from conversations.models import UserPreference

    code = UserPreference.objects.filter(user=user).values_list("language", flat=True).first()
    if supported(code):
        request.session[SESSION_KEY] = code


class PreferredLanguageMiddleware:
    """Apply the signed-in user's saved language over the cookie and the browser's.

    Reads the session only (filled at sign-in), so pages cost no extra query.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        code = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if not supported(code):
            return self.get_response(request)
        translation.activate(code)
        request.LANGUAGE_CODE = code
        response = self.get_response(request)
        if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != code:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                code,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


def language_for_scope(scope: dict) -> str:
    """Return the language for a websocket: the account's, the cookie's, the browser's."""
    session = scope.get("session")
    code = session.get(SESSION_KEY) if session is not None else None
    if supported(code):
        return code
    cookie = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
    if cookie and translation.check_for_language(cookie) and supported(cookie):
        return cookie
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    for code, _ in translation.trans_real.parse_accept_lang_header(accept):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE

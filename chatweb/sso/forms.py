"""The password sign-in form, closed to everyone but staff when PASSWORD_LOGIN says so."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from chatweb.security import ThrottledAuthenticationForm

__all__ = ["PasswordSignInForm"]


class PasswordSignInForm(ThrottledAuthenticationForm):
    """Staff keep their passwords as a way in when the identity provider is down."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if settings.OIDC_RULES.passwords_for_staff_only and not user.is_staff:
            raise forms.ValidationError(
                _("Please sign in with your company account; passwords are for staff only."),
                code="password_login_off",
            )

"""Why a sign-in through a provider failed: what the person is told, what the log says."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

__all__ = ["SignInFailed"]

# code -> what the person sees; the log line says the details.
MESSAGES = {
    "unknown_provider": _("This sign-in provider is not configured."),
    "expired": _("The sign-in took too long or was started in another tab. Please try again."),
    "denied": _("The identity provider did not let you sign in."),
    "unreachable": _(
        "The identity provider cannot be reached right now. Please try again in a few minutes."
    ),
    "bad_answer": _(
        "The identity provider sent an answer chatweb cannot trust, so you were not signed "
        "in. Please tell an administrator."
    ),
    "not_allowed": _("Your account at the identity provider may not use chatweb."),
    "deactivated": _("Your chatweb account is deactivated. Please ask an administrator."),
    "name_taken": _(
        "A chatweb account with your user name already exists and is not linked to this "
        "provider. Please ask an administrator to link it."
    ),
    "no_groups_claim": _(
        "The identity provider did not say which groups you are in. Please tell an administrator."
    ),
    "too_many_groups": _(
        "The identity provider listed more groups than chatweb accepts. Please tell an "
        "administrator."
    ),
}


class SignInFailed(Exception):
    """A sign-in was refused; `code` picks the message, `detail` goes to the log only."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def message(self):
        return MESSAGES[self.code]

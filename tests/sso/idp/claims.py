"""The claims the test provider sends about its users."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.sso.idp.people import USERS, groups_of


class ClaimsValidator(OAuth2Validator):
    """Send the standard profile claims and `groups`, as Keycloak or Authentik do."""

    # Every claim whatever the scopes, as a provider with a groups mapper on the client does.
    oidc_claim_scope = None

    def get_additional_claims(self, request):
        username = request.user.username
        name, email, _ = USERS[username]
        claims = {
            "preferred_username": username,
            "name": name,
            "email": email,
            "email_verified": True,
        }
        groups = groups_of(username)
        if groups is not None:
            claims["groups"] = groups
        return claims

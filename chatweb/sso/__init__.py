"""Sign-in with the company's identity providers (OpenID Connect).

mozilla-django-oidc does the protocol's moving parts (state, nonce and PKCE kept in the
session, the code exchanged for tokens, the signing key picked from the provider's
JWKS); this package adds what it lacks: several providers configured from the
environment (`config`), discovery (`discovery`), full ID token validation and the
provider's answers checked before they are trusted (`backend`), accounts matched by
(provider, `sub`) with groups synced from a claim (`accounts`), and pages that say what
went wrong instead of a traceback (`views`).
"""

"""Turn a provider's verified claims into a chatweb account with its groups.

Everything here happens in one transaction after every network call is done, so a
refusal at any step leaves no account, no identity and no half-synced groups behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone

from chatweb.sso.config import Provider, SignInRules
from chatweb.sso.errors import SignInFailed
from chatweb.sso.models import Identity, ProvidedMembership

__all__ = ["sign_in"]

User = get_user_model()


def claimed_groups(provider: Provider, rules: SignInRules, claims: Mapping[str, Any]) -> list[str]:
    """Return the group names the claim lists, checked for shape and size."""
    if not provider.groups_claim:
        return []
    if provider.groups_claim not in claims:
        raise SignInFailed(
            "no_groups_claim", f"the ID token and userinfo have no {provider.groups_claim!r} claim"
        )
    groups = claims[provider.groups_claim]
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(name, str) for name in groups):
        raise SignInFailed("bad_answer", f"claim {provider.groups_claim!r} is not a list of names")
    if len(groups) > rules.max_groups:
        raise SignInFailed(
            "too_many_groups",
            f"{len(groups)} groups claimed; OIDC_MAX_GROUPS is {rules.max_groups}",
        )
    # Django's Group.name holds 150 characters; a longer name cannot be one of ours.
    return sorted({name.strip() for name in groups if 0 < len(name.strip()) <= 150})


def check_allowed(rules: SignInRules, claims: Mapping[str, Any], groups: list[str]) -> None:
    """Refuse someone outside the allowed e-mail domains or required groups."""
    if rules.allowed_email_domains:
        email = str(claims.get("email") or "").lower()
        domain = email.rpartition("@")[2]
        if claims.get("email_verified") is False or domain not in rules.allowed_email_domains:
            raise SignInFailed("not_allowed", f"e-mail {email!r} is not in an allowed domain")
    if rules.required_groups and not set(rules.required_groups) & set(groups):
        raise SignInFailed("not_allowed", "member of none of OIDC_REQUIRED_GROUPS")


def username_from(provider: Provider, claims: Mapping[str, Any]) -> str:
    username = claims.get(provider.username_claim)
    if not isinstance(username, str) or not username.strip():
        raise SignInFailed("bad_answer", f"no user name in claim {provider.username_claim!r}")
    username = username.strip()
    if len(username) > User._meta.get_field("username").max_length:
        raise SignInFailed("bad_answer", f"user name of {len(username)} characters is too long")
    return username


def profile_from(claims: Mapping[str, Any]) -> dict[str, str]:
    """Return the name and e-mail fields the claims fill, cut to the columns' sizes.

    A field the provider did not send is left out, so a provider that stops sending
    e-mail addresses does not blank the ones already known.
    """
    given = claims.get("given_name")
    family = claims.get("family_name")
    if not isinstance(given, str) and not isinstance(family, str):
        given, family = claims.get("name"), ""
    email = claims.get("email")
    fields = {
        "first_name": (given if isinstance(given, str) else "")[:150],
        "last_name": (family if isinstance(family, str) else "")[:150],
        "email": (email if isinstance(email, str) else "")[:254],
    }
    return {field: value.strip() for field, value in fields.items() if value.strip()}


def sync_groups(identity: Identity, rules: SignInRules, claimed: list[str]) -> None:
    """Make the user's provider-given groups those the claim names under the prefix."""
    now = timezone.now()
    wanted = [name for name in claimed if name.startswith(rules.group_prefix)]
    groups = {group.name: group for group in Group.objects.filter(name__in=wanted)}
    if rules.create_groups:
        for name in wanted:
            if name not in groups:
                groups[name], _ = Group.objects.get_or_create(name=name)
    user = identity.user
    stale = identity.memberships.exclude(group__in=groups.values())
    user.groups.remove(*[membership.group for membership in stale.select_related("group")])
    stale.delete()
    user.groups.add(*groups.values())
    for group in groups.values():
        ProvidedMembership.objects.update_or_create(
            identity=identity, group=group, defaults={"synced_at": now}
        )
    identity.groups_synced_at = now


@transaction.atomic
def sign_in(provider: Provider, rules: SignInRules, claims: Mapping[str, Any]) -> AbstractBaseUser:
    """Return the user these verified claims belong to, created or updated.

    Matched by (provider, `sub`) only: an e-mail address or user name that matches a
    local account is refused rather than taken over.
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise SignInFailed("bad_answer", "the ID token has no usable 'sub'")
    groups = claimed_groups(provider, rules, claims)
    check_allowed(rules, claims, groups)
    identity = (
        Identity.objects.select_for_update()
        .select_related("user")
        .filter(provider=provider.name, subject=subject)
        .first()
    )
    if identity is not None and not identity.user.is_active:
        raise SignInFailed("deactivated", f"user {identity.user.pk} is inactive")
    profile = profile_from(claims)
    if identity is None:
        username = username_from(provider, claims)
        if User.objects.filter(username__iexact=username).exists():
            raise SignInFailed("name_taken", f"local account {username!r} exists, not linked")
        user = User(username=username, **profile)
        user.set_unusable_password()
        user.save()
        identity = Identity.objects.create(user=user, provider=provider.name, subject=subject)
    else:
        user = identity.user
        changed = [field for field, value in profile.items() if getattr(user, field) != value]
        for field in changed:
            setattr(user, field, profile[field])
        if changed:
            user.save(update_fields=changed)
    sync_groups(identity, rules, groups)
    identity.signed_in_at = timezone.now()
    identity.save(update_fields=["signed_in_at", "groups_synced_at"])
    return user

"""The test provider's users and their groups (no Django imports: the tests read it)."""

from __future__ import annotations

PASSWORD = "idp-password-123"  # every test user's password at the provider

# user name -> (name, e-mail, groups; None sends no groups claim at all)
USERS: dict[str, tuple[str, str, list[str] | None]] = {
    "ada": ("Ada Lovelace", "ada@example.com", ["chatweb-research", "payroll"]),
    "grace": ("Grace Hopper", "grace@example.com", ["chatweb-research", "chatweb-support"]),
    "eve": ("Eve Contractor", "eve@elsewhere.test", ["chatweb-research"]),
    "nogroups": ("No Groups", "nogroups@example.com", None),
    "many": ("Many Groups", "many@example.com", [f"chatweb-team-{n}" for n in range(5000)]),
    # Shares its user name with a local chatweb account in the tests.
    "ming": ("Ming Provider", "ming@example.com", ["chatweb-research"]),
}

# A test may change a user's groups while the provider runs (POST /control/groups).
GROUP_OVERRIDES: dict[str, list[str] | None] = {}


def groups_of(username: str) -> list[str] | None:
    if username in GROUP_OVERRIDES:
        return GROUP_OVERRIDES[username]
    return USERS[username][2]

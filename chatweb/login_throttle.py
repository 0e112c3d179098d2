"""Sign-in attempts counted before the password is checked, so none slips through.

Two counters live in Django's default cache (Redis when REDIS_URL is set, so every
process shares them): attempts at one user name from one address, and failed attempts
at any name from one address (password spraying tries one common password on many
names). Each attempt adds one to both with the cache's atomic `incr` and only then
learns whether it may go on, so forty guesses sent at once get forty different counts
and only the first LOGIN_THROTTLE_FAILURES are checked; a separate "blocked?" read and a
later "count it" write let every one of them through.

A success clears the pair's count and takes its own attempt back off the address's,
so colleagues behind one office address who type their passwords right never add up.
The window is fixed: it starts at the first attempt and later ones do not extend it.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

__all__ = ["LoginThrottle"]


def cache_key(kind: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()
    return f"login-attempts:{kind}:{digest}"


def count_one(key: str, window_seconds: int) -> int:
    """Add one to `key`, starting a window of `window_seconds` when it is new."""
    cache.add(key, 0, timeout=window_seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 0, timeout=window_seconds)
        count = cache.incr(key)
    if count == 1:
        # Redis's INCR of a key that expired a moment earlier makes one with no expiry;
        # the first count of a window always (re)sets it.
        cache.touch(key, window_seconds)
    return count


class LoginThrottle:
    """The attempts of one user name from one address, and of that address overall."""

    def __init__(self, username: str, address: str | None) -> None:
        address = address or "-"
        self.pair_key = cache_key("pair", f"{username.strip().casefold()}\0{address}")
        self.address_key = cache_key("address", address)

    @property
    def window_seconds(self) -> int:
        return settings.LOGIN_THROTTLE_MINUTES * 60

    def admit(self) -> bool:
        """Count this attempt; return whether its password may be checked."""
        pair = count_one(self.pair_key, self.window_seconds)
        address = count_one(self.address_key, self.window_seconds)
        return (
            pair <= settings.LOGIN_THROTTLE_FAILURES
            and address <= settings.LOGIN_THROTTLE_ADDRESS_FAILURES
        )

    def succeeded(self) -> None:
        """Forget the pair's failures and give the address back this attempt."""
        cache.delete(self.pair_key)
        try:
            remaining = cache.decr(self.address_key)
        except ValueError:  # the window ended meanwhile: nothing to give back
            return
        if remaining < 0:  # it ended between Redis's EXISTS and DECR: a key with no expiry
            cache.delete(self.address_key)

    def attempts(self) -> tuple[int, int]:
        """Return the attempts counted for the pair and for the address."""
        return int(cache.get(self.pair_key, 0)), int(cache.get(self.address_key, 0))

    def reset(self) -> None:
        cache.delete_many([self.pair_key, self.address_key])

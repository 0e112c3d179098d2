"""Read settings from the environment, failing with one clear line per mistake.

Settings modules run at import time, where a traceback is the usual way to say a
value is wrong. An operator deserves better: `EnvError` names the variable and what is
wrong with it, and `manage.py` and `asgi.py` print just that line and exit.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

__all__ = ["EnvError", "env_bool", "env_float", "env_int", "env_list", "env_str", "env_url"]

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class EnvError(Exception):
    """An environment variable is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


def env_str(name: str, default: str = "") -> str:
    """Return the variable stripped of surrounding spaces, or `default` when unset."""
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    """Return a yes/no variable; anything but a recognised word is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise EnvError(name, f"expected one of 1/0, true/false, yes/no, on/off, got {raw!r}")


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Return a number of at least `minimum`."""
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise EnvError(name, f"expected a number, got {raw!r}") from None
    if value < minimum:
        raise EnvError(name, f"must be at least {minimum:g}, got {raw!r}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Return a whole number of at least `minimum`."""
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EnvError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise EnvError(name, f"must be at least {minimum}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated list without empty entries."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_url(name: str, *, schemes: tuple[str, ...]) -> str:
    """Return a URL whose scheme is one of `schemes` and which names a host or path."""
    raw = env_str(name)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise EnvError(name, f"must start with {allowed}; got a URL with scheme {parts.scheme!r}")
    if not (parts.netloc or parts.path.strip("/")):
        raise EnvError(name, "names no host")
    return raw

"""`manage.py check --deploy`: what a production configuration must not get wrong.

Start-up already refuses DEBUG off without a gateway key (chatweb/settings.py); these
checks say the same about a configuration checked with DEBUG on, and warn about choices
that are allowed but rarely meant in production.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

__all__ = ["gateway_is_configured", "proxies_are_counted"]


@register(Tags.security, deploy=True)
def gateway_is_configured(app_configs, **kwargs) -> list:
    """Answers must come from a real gateway unless the simulator is asked for by name."""
    if settings.OPENAI_API_KEY:
        return []
    if settings.GATEWAY == "simulator":
        return [
            Warning(
                "GATEWAY=simulator: every answer comes from the offline simulator.",
                hint="Set OPENAI_API_KEY (and OPENAI_BASE_URL) and unset GATEWAY for real answers.",
                id="chatweb.W001",
            )
        ]
    return [
        Error(
            "OPENAI_API_KEY is not set: users would get the offline simulator's canned "
            "answers, charged to their quotas.",
            hint="Set OPENAI_API_KEY, or GATEWAY=simulator if a simulator is what you want.",
            id="chatweb.E001",
        )
    ]


@register(Tags.security, deploy=True)
def proxies_are_counted(app_configs, **kwargs) -> list:
    """Behind a TLS proxy, trusting none makes every client share the proxy's address."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and not settings.TRUSTED_PROXY_COUNT:
        return [
            Warning(
                "HTTPS=1 (so a proxy is in front) but TRUSTED_PROXY_COUNT=0: every client "
                "has the proxy's address, so the per-address sign-in limit and the audit "
                "log cannot tell them apart.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies that append to "
                "X-Forwarded-For (1 for the bundled nginx).",
                id="chatweb.W002",
            )
        ]
    return []

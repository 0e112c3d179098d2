"""The project package as an app, so its system checks are registered at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class ChatwebConfig(AppConfig):
    name = "chatweb"
    verbose_name = "chatweb"

    def ready(self) -> None:
        from chatweb import checks  # noqa: F401  (registers the checks)

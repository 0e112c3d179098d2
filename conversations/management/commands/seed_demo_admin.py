"""Create the demo admin on a development database that has no users yet.

`make run` calls this so a fresh checkout can sign in without `createsuperuser`. It
refuses to run with DEBUG off: a production database must never get an account whose
password is printed in the README.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "chatweb-demo"  # noqa: S105 - documented development-only credential


class Command(BaseCommand):
    help = "Create the demo admin (development only, and only when there are no users)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "refusing to create the demo admin with DEBUG off; use createsuperuser"
            )
        users = get_user_model()
        if users.objects.exists():
            self.stdout.write("Users exist already; no demo admin created.")
            return
        users.objects.create_superuser(DEMO_USERNAME, "", DEMO_PASSWORD)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the demo admin: username {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}"
            )
        )

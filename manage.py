#!/usr/bin/env python
"""Django's command-line utility for chatweb."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatweb.settings")
    from django.core.management import execute_from_command_line

    from chatweb.env import EnvError

    try:
        execute_from_command_line(sys.argv)
    except EnvError as error:
        sys.exit(f"chatweb: configuration error: {error}")


if __name__ == "__main__":
    main()

"""Fail when the Chinese catalogue misses, leaves untranslated or no longer matches a string.

Runs `makemessages` on a copy of the sources in a temporary directory (so the committed
catalogue is never touched) and compares its message ids with the committed .po files:
a string added to a template or module without `make messages`, or one removed from them,
makes the catalogue stale. Every entry must also have a translation that is not fuzzy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

LOCALE = "zh_Hans"
DOMAINS = ("django", "djangojs")
# What makemessages reads: the project's own sources, never .venv, bench or tests.
SOURCES = ("chatweb", "conversations", "templates", "static")
ENTRY_KEY = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$')


def read_catalogue(path: Path) -> dict[tuple, dict]:
    """Return the entries of a .po file keyed by (context, id, plural id)."""
    entries: dict[tuple, dict] = {}
    entry: dict = {}
    key = ""

    def close() -> None:
        if entry.get("msgid"):
            ident = (entry.get("msgctxt"), entry["msgid"], entry.get("msgid_plural"))
            entries[ident] = dict(entry)
        entry.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            close()
        elif line.startswith("#,"):
            entry["fuzzy"] = "fuzzy" in line
        elif match := ENTRY_KEY.match(line):
            key = match[1]
            entry[key] = ast.literal_eval(match[2])
        elif line.startswith('"') and key:
            entry[key] += ast.literal_eval(line)
    close()
    return entries


def fresh_catalogue(domain: str) -> dict[tuple, dict]:
    """Return the entries makemessages extracts from the sources as they are now."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name in SOURCES:
            shutil.copytree(settings.BASE_DIR / name, root / name)
        (root / "locale").mkdir()
        here = Path.cwd()
        os.chdir(root)
        try:
            with override_settings(LOCALE_PATHS=[root / "locale"]):
                call_command(
                    "makemessages", locale=[LOCALE], domain=domain, no_location=True, verbosity=0
                )
        finally:
            os.chdir(here)
        return read_catalogue(root / "locale" / LOCALE / "LC_MESSAGES" / f"{domain}.po")


def problems(locale_dir: Path | None = None) -> list[str]:
    """Return one line per missing, stale, untranslated or fuzzy string."""
    locale_dir = locale_dir or settings.BASE_DIR / "locale"
    found = []
    for domain in DOMAINS:
        path = locale_dir / LOCALE / "LC_MESSAGES" / f"{domain}.po"
        if not path.exists():
            found.append(f"{domain}: {path} is missing; run `make messages`")
            continue
        committed = read_catalogue(path)
        fresh = fresh_catalogue(domain)
        for ident in fresh.keys() - committed.keys():
            found.append(f"{domain}: not in the catalogue (run `make messages`): {ident[1]!r}")
        for ident in committed.keys() - fresh.keys():
            found.append(f"{domain}: no longer in the sources (run `make messages`): {ident[1]!r}")
        for ident, entry in committed.items():
            translations = [value for key, value in entry.items() if key.startswith("msgstr")]
            if entry.get("fuzzy"):
                found.append(f"{domain}: fuzzy: {ident[1]!r}")
            elif not translations or not all(translations):
                found.append(f"{domain}: untranslated: {ident[1]!r}")
    return found


class Command(BaseCommand):
    help = "Fail if the zh_Hans catalogue is stale or has an untranslated or fuzzy string."

    def handle(self, *args, **options) -> None:
        found = problems()
        if found:
            raise CommandError("\n".join(["Translations are incomplete:", *found]))
        self.stdout.write("Translations are complete and up to date.")

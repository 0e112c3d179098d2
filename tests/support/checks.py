"""Run `manage.py check` in a fresh process with an environment of the test's choosing.

Settings are read once, at start-up, so a test of what a variable does needs a new
process; the run starts from the test runner's environment minus anything that would
decide the outcome for the test (database, Redis, gateway, settings module).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import PROJECT_DIR


def run_check(*options: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    for name in ("DJANGO_SETTINGS_MODULE", "OPENAI_API_KEY", "OPENAI_BASE_URL", "GATEWAY"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *options],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )

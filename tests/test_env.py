"""A malformed environment stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR


def run_check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "maybe"}, "DEBUG: expected one of"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY: must be set"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://db/chat"}, "DATABASE_URL: must start with"),
        ({"DEBUG": "1", "REDIS_URL": "http://cache"}, "REDIS_URL: must start with"),
        ({"DEBUG": "1", "GATEWAY_READ_TIMEOUT": "soon"}, "GATEWAY_READ_TIMEOUT: expected a number"),
        ({"DEBUG": "1", "OPENAI_BASE_URL": "https://gw.example/v1"}, "OPENAI_API_KEY: must be set"),
    ],
)
def test_malformed_env_stops_with_one_line(env, expected):
    result = run_check(**env)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip().splitlines()[0]], (
        result.stderr
    )
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_database_url_error_does_not_echo_the_password():
    result = run_check(DEBUG="1", DATABASE_URL="mysql://chat:hunter2-secret@db/chat")

    assert "hunter2-secret" not in result.stderr


def test_defaults_pass_checks_in_development():
    result = run_check(DEBUG="1")

    assert result.returncode == 0, result.stderr

"""A malformed environment stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR
from tests.support.checks import run_check

STRONG_KEY = "tests-only-secret-key-" + "0123456789" * 4


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "maybe"}, "DEBUG: expected one of"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY: must be set"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://db/chat"}, "DATABASE_URL: must start with"),
        ({"DEBUG": "1", "REDIS_URL": "http://cache"}, "REDIS_URL: must start with"),
        ({"DEBUG": "1", "GATEWAY_READ_TIMEOUT": "soon"}, "GATEWAY_READ_TIMEOUT: expected a number"),
        ({"DEBUG": "1", "OPENAI_BASE_URL": "https://gw.example/v1"}, "OPENAI_API_KEY: must be set"),
        # Production without a key would hand users the simulator's canned answers.
        ({"DEBUG": "0", "SECRET_KEY": STRONG_KEY}, "OPENAI_API_KEY: must be set when DEBUG"),
        ({"DEBUG": "1", "GATEWAY": "openai"}, "GATEWAY: expected 'simulator'"),
        ({"DEBUG": "1", "GATEWAY": "simulator", "OPENAI_API_KEY": "k" * 20}, "GATEWAY: is"),
        # Django's W009 bar: 50+ characters, 5+ different ones.
        ({"DEBUG": "0", "SECRET_KEY": "a1b2c3d4e5" * 4, "GATEWAY": "simulator"}, "too weak"),
        ({"DEBUG": "0", "SECRET_KEY": "ab" * 40, "GATEWAY": "simulator"}, "SECRET_KEY: is too"),
        (
            {"DEBUG": "0", "SECRET_KEY": "change-me-" + STRONG_KEY, "GATEWAY": "simulator"},
            "SECRET_KEY: is still the example value",
        ),
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


def test_simulator_named_on_purpose_starts_with_debug_off():
    result = run_check(DEBUG="0", SECRET_KEY=STRONG_KEY, GATEWAY="simulator")

    assert result.returncode == 0, result.stderr


def test_deploy_check_refuses_a_missing_gateway_key():
    result = run_check("--deploy", DEBUG="1")

    assert result.returncode != 0
    assert "chatweb.E001" in result.stderr
    assert "OPENAI_API_KEY is not set" in result.stderr


def test_deploy_check_names_the_simulator_and_an_uncounted_proxy():
    result = run_check("--deploy", DEBUG="0", SECRET_KEY=STRONG_KEY, GATEWAY="simulator", HTTPS="1")
    output = result.stdout + result.stderr

    assert "chatweb.W001" in output and "chatweb.W002" in output
    counted = run_check(
        "--deploy",
        DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        GATEWAY="simulator",
        HTTPS="1",
        TRUSTED_PROXY_COUNT="1",
    )
    assert "chatweb.W002" not in counted.stdout + counted.stderr


def test_deploy_check_is_quiet_with_a_key():
    result = run_check("--deploy", DEBUG="0", SECRET_KEY=STRONG_KEY, OPENAI_API_KEY="k" * 20)

    assert "chatweb." not in result.stdout + result.stderr


def test_daphne_proxy_headers_without_a_trusted_proxy_count_stops_start_up():
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "daphne", "-p", "0", "--proxy-headers", "chatweb.asgi:application"],
        cwd=PROJECT_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "TRUSTED_PROXY_COUNT: is 0 but Daphne runs with --proxy-headers" in result.stderr
    assert "Traceback" not in result.stderr

"""The image's HEALTHCHECK agrees with the settings it runs under."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.servers import PROJECT_DIR, Server, free_port
from tests.support.image import dockerfile_instruction, start_image_server

pytestmark = pytest.mark.django_db(transaction=True)

BEHIND_TLS = {"HTTPS": "1", "ALLOWED_HOSTS": "chat.example.com", "TRUSTED_PROXY_COUNT": "1"}


def run_healthcheck(port: int, **env: str) -> subprocess.CompletedProcess:
    """Run the Dockerfile's HEALTHCHECK command against `port`, with the container's env."""
    args = dockerfile_instruction("HEALTHCHECK")
    assert args[0] == "python"
    return subprocess.run(
        [sys.executable, *args[1:], str(port)],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def bare_probe_status(url: str) -> int:
    """What `urllib.request.urlopen(http://127.0.0.1:8000/healthz)` used to see."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        return urllib.request.build_opener(NoRedirect).open(f"{url}/healthz", timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def behind_tls(tmp_path) -> Iterator[Server]:
    server = start_image_server(tmp_path, **BEHIND_TLS)
    yield server
    server.stop()


def test_healthcheck_passes_with_https_and_a_public_host_name(behind_tls):
    port = int(behind_tls.url.rsplit(":", 1)[1])

    assert bare_probe_status(behind_tls.url) in (301, 400)  # what made containers unhealthy
    result = run_healthcheck(port, **BEHIND_TLS)
    assert result.returncode == 0, result.stderr


def test_healthcheck_passes_with_the_defaults(tmp_path):
    server = start_image_server(tmp_path)
    try:
        result = run_healthcheck(int(server.url.rsplit(":", 1)[1]))
    finally:
        server.stop()

    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_when_nothing_answers():
    result = run_healthcheck(free_port())

    assert result.returncode == 1
    assert "healthz:" in result.stderr

"""The image's own commands, run on this machine against the test database.

No container engine is needed to test what the Dockerfile promises: its CMD starts
Daphne with the same arguments here (bound to loopback on a free port), and its
HEALTHCHECK command runs as it would inside the container.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx

from tests import servers
from tests.servers import PROJECT_DIR, Server, free_port


def dockerfile_instruction(name: str) -> list[str]:
    """Return the exec-form arguments of the Dockerfile's CMD or HEALTHCHECK ... CMD."""
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    pattern = r"^CMD (\[.*\])$" if name == "CMD" else r"^HEALTHCHECK .*?CMD (\[.*\])$"
    return json.loads(re.search(pattern, dockerfile, re.MULTILINE).group(1))


def start_image_server(log_dir, **extra_env: str) -> Server:
    """Start Daphne as the image does, on a free loopback port, and wait until it answers.

    Any HTTP answer will do: with HTTPS=1 or a public ALLOWED_HOSTS a bare probe gets a
    redirect or a 400, which is what some tests are about.
    """
    args = dockerfile_instruction("CMD")
    assert args[0] == "daphne"
    port = free_port()
    args = [sys.executable, "-m", "daphne", *args[1:]]
    args[args.index("-b") + 1] = "127.0.0.1"
    args[args.index("-p") + 1] = str(port)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": servers.test_database_url(),
        "DEBUG": "0",
        **extra_env,
    }
    log_path = log_dir / f"daphne-image-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Daphne exited during start-up:\n{server.log()}")
        try:
            httpx.get(f"{server.url}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Daphne did not become healthy in 30 s:\n{server.log()}")

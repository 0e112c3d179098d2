"""Start the real app in a Daphne subprocess, as `make run` does, for end-to-end tests.

A subprocess rather than a fork: the server gets its own event loop, its own database
connections and its own copy of the channel layer, exactly as in production. It talks
to the test database by passing that database's URL in DATABASE_URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_DIR / "test-artifacts"  # servers' logs and what tests observed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_url() -> str:
    """Return a DATABASE_URL naming the database the test run created."""
    config = connection.settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgresql://{credentials}{host}:{port}/{config['NAME']}"


def gateway_env(simulator) -> dict[str, str]:
    """The environment that points a server at `simulator` (a RunningSimulator)."""
    return {
        "OPENAI_BASE_URL": simulator.base_url,
        "OPENAI_API_KEY": simulator.api_key,
        "GATEWAY_MAX_RETRIES": "0",
    }


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    log_dir: Path, *, extra_env: dict[str, str] | None = None, port: int | None = None
) -> Server:
    """Start Daphne on `port` (a free one by default) and wait until /healthz answers 200."""
    port = port or free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": test_database_url(),
        "DEBUG": "0",
        **(extra_env or {}),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log_path = log_dir / f"daphne-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket_timeout",
                "-1",
                "chatweb.asgi:application",
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    if answers_ok(process, f"{server.url}/healthz", within=30, log=server.log, name="Daphne"):
        return server
    server.stop()
    raise RuntimeError(f"Daphne did not become healthy in 30 s:\n{server.log()}")


def answers_ok(process, url: str, *, within: float, log, name: str) -> bool:
    """Wait until `url` answers 200 while `process` runs; False when `within` s pass.

    Raises, with the process's log, if it exits first.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up:\n{log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False

"""The simulator on a real port: the gateway every test that needs one talks to.

`serve()` runs the simulator under uvicorn in a background thread, bound to a free
port; the session-wide `simulator_server` fixture in tests/conftest.py uses it, so tests
reach it over real HTTP exactly as the app reaches a gateway.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from conversations.gateway.simulator import Simulator

SIMULATOR_KEY = "sk-test-SECRET-0123456789abcdefSECRET"
TEST_PACE = 2000.0  # tokens per second: fast, but still a real stream


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a real port."""

    base_url: str  # e.g. http://127.0.0.1:41234/v1
    app: Simulator
    api_key: str | None


@contextmanager
def serve(app: Simulator) -> Iterator[str]:
    """Serve `app` on a free local port in a thread; yield its `/v1` base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The simulator server did not start.")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()

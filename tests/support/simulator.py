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

from conversations.gateway.simulator import RequestRecord, Simulator

SIMULATOR_KEY = "sk-test-SECRET-0123456789abcdefSECRET"
TEST_PACE = 2000.0  # tokens per second: fast, but still a real stream


class RequestLog:
    """The requests the session's simulator received since this log was opened.

    The simulator keeps the session's last requests in one bounded deque; a test that
    read its last entry could read another test's request (a title still being written,
    say). A log remembers the newest entry at the start and shows only what came after.
    """

    def __init__(self, app: Simulator) -> None:
        self.app = app
        self.start = app.requests[-1] if app.requests else None

    def all(self) -> list[RequestRecord]:
        records = list(self.app.requests)
        for index, record in enumerate(records):
            if record is self.start:
                return records[index + 1 :]
        # The start fell out of the deque (or there was none): every entry is newer.
        return records

    def streamed(self) -> list[dict]:
        """The bodies of the streamed Responses requests (answers; titles are not streamed)."""
        return [record.body for record in self.all() if record.body and record.body.get("stream")]


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator listening on a real port."""

    base_url: str  # e.g. http://127.0.0.1:41234/v1
    app: Simulator
    api_key: str | None


@dataclass(frozen=True)
class SimulatorForTest(RunningSimulator):
    """The session's simulator as one test sees it: `requests` holds only that test's."""

    requests: RequestLog


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

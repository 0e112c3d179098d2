"""The processes and connections both harnesses use: `bench.run` and `bench.loadtest`.

Each starts a simulator, Daphne and sometimes Redis on free local ports, waits until they
answer, stops them at the end (gently, then not), drops and creates a database of its
own, and opens chat sockets the way a signed-in browser tab does.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time

import httpx

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# How long a server may take to answer after it was started.
START_SECONDS = 60.0
# How long a stopped process may take to finish its shutdown before it is killed.
STOP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(process: subprocess.Popen, url: str, headers: dict | None = None) -> None:
    """Return once `url` answers 200; raise if `process` exits first or time runs out."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {START_SECONDS:.0f} s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Send `sig` and wait for the process to finish; kill it if it takes too long."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pg_admin(*statements: str, url: str = PG_ADMIN_URL) -> None:
    """Run statements such as CREATE DATABASE, which cannot run inside a transaction."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


def chat_socket(ws_url: str, session: str, origin: str):
    """Return the page's chat socket for a signed-in session: await it or `async with` it.

    No compression and no pings, as a quiet browser tab; no size limit, since one frame
    may carry a whole answer; a generous open timeout, since hundreds connect at once.
    """
    from websockets.asyncio.client import connect

    return connect(
        ws_url,
        additional_headers={"Cookie": f"sessionid={session}", "Origin": origin},
        origin=None,
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=60,
        close_timeout=5,
    )

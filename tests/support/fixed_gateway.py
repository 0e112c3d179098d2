"""A gateway on a real port that answers every path with fixed replies.

For what the simulator does not do: list models other than its own `sim-*` ones, or
answer `GET /models` with a company proxy's HTML page. Requests travel over real HTTP,
exactly as the app sends them to a gateway.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before answering: a gateway that stalls


def model_list(*model_ids: str) -> Reply:
    """Return an OpenAI-style `GET /models` reply listing `model_ids`."""
    data = [{"id": model_id, "object": "model", "owned_by": "test"} for model_id in model_ids]
    return Reply(200, json.dumps({"object": "list", "data": data}).encode())


@contextmanager
def fixed_gateway(replies: dict[str, Reply]) -> Iterator[str]:
    """Serve `replies` (by path, e.g. "/v1/models"; 404 elsewhere); yield the /v1 base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = replies.get(self.path, Reply(404, b'{"error": {"message": "Not found"}}'))
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what a stalled gateway is for

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads, server.block_on_close = True, False  # a stalled reply is left
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()

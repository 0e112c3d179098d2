"""LiteLLM's proxy in front of a simulator: a real third-party gateway for the tests.

The session-wide `litellm_gateway` fixture starts a simulator backend (Chat Completions,
requests recorded), writes tests/gateways/litellm.yaml with the ports filled in, runs
`.venv-litellm/bin/litellm` without a database, offline and quiet, and yields where to
reach it. `make test` builds `.venv-litellm` (LiteLLM's dependencies conflict with ours);
without it the tests skip, except in CI, where a missing gateway must not pass unnoticed.

Point the app at it with `settings.OPENAI_BASE_URL = litellm_gateway.base_url` and
`settings.OPENAI_API_KEY = litellm_gateway.api_key`, and add catalogue rows named after
its models (`litellm_gateway.chat_model`, …).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conversations.gateway.simulator import Simulator
from tests.support.simulator import TEST_PACE, serve

__all__ = ["LITELLM", "MASTER_KEY", "RunningLiteLLM", "litellm_gateway", "run_litellm"]

ROOT = Path(__file__).resolve().parents[2]
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
CONFIG_TEMPLATE = ROOT / "tests" / "gateways" / "litellm.yaml"
MASTER_KEY = "sk-litellm-MASTER-0123456789abcdef"
BACKEND_KEY = "sk-backend-0123456789abcdef"
STARTUP_TIMEOUT = 120.0  # seconds; LiteLLM imports a lot before it listens
# The per-test limit for tests on the proxy: the first one also waits for it to start.
TEST_TIMEOUT = STARTUP_TIMEOUT + 60
# Keep LiteLLM offline and quiet: bundled cost map and presets instead of downloads, no
# admin UI or docs, errors only in its log. Telemetry is opt-in in this version.
OFFLINE_ENVIRONMENT = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
}


@dataclass(frozen=True)
class RunningLiteLLM:
    """A LiteLLM proxy listening on a real port, with its simulator backend."""

    base_url: str  # e.g. http://127.0.0.1:41234/v1
    api_key: str
    backend: Simulator  # `backend.requests` holds what reached the backend
    log_path: Path
    chat_model: str = "bridged-chat"
    dead_model: str = "dead-backend"  # its backend is a closed port
    reasoning_model: str = "bridged-reasoner"  # rejects `reasoning` (no drop_params)
    lenient_reasoning_model: str = "bridged-reasoner-drop-params"
    text_model: str = "bridged-mini"  # its backend model reads no files
    # `openai/` entries: LiteLLM forwards Responses API calls to the backend unchanged.
    forwarded_model: str = "forwarded-chat"
    forwarded_text_model: str = "forwarded-mini"

    def backend_requests(self, path: str = "/v1/chat/completions") -> list[dict]:
        """Return the bodies the backend received on `path`, oldest first."""
        return [record.body for record in self.backend.requests if record.path == path]


@contextmanager
def run_litellm(workdir: Path) -> Iterator[RunningLiteLLM]:
    """Run LiteLLM (from .venv-litellm) in front of a new simulator until the block ends."""
    backend = Simulator(
        api_key=BACKEND_KEY, tokens_per_second=TEST_PACE, first_token_delay=0, record_requests=500
    )
    with serve(backend) as backend_url:
        config = workdir / "litellm.yaml"
        config.write_text(
            CONFIG_TEMPLATE.read_text().format(
                backend=backend_url,
                dead_backend=f"http://127.0.0.1:{_free_port()}/v1",
                backend_key=BACKEND_KEY,
                master_key=MASTER_KEY,
            )
        )
        port = _free_port()
        log_path = workdir / "litellm.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                cwd=workdir,
                env=_environment(workdir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_live(f"http://127.0.0.1:{port}", process, log_path)
            yield RunningLiteLLM(f"http://127.0.0.1:{port}/v1", MASTER_KEY, backend, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def litellm_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLiteLLM]:
    """Yield the session's LiteLLM proxy; skip (fail in CI) when it is not installed."""
    if not LITELLM.exists():
        message = f"LiteLLM is not installed ({LITELLM}): run make test to install LiteLLM"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with run_litellm(tmp_path_factory.mktemp("litellm")) as running:
        yield running


def _environment(workdir: Path) -> dict[str, str]:
    """Return a clean environment: none of ours (DATABASE_URL would make it use ours)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        **OFFLINE_ENVIRONMENT,
    }


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"LiteLLM exited at startup:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"LiteLLM did not start within {STARTUP_TIMEOUT:g} s:\n{_tail(log_path)}")


def _tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

"""Start the test identity provider (tests/sso/idp) in its own process on a free port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import PROJECT_DIR, answers_ok, free_port
from tests.sso.idp.people import PASSWORD

__all__ = ["PASSWORD", "RunningProvider", "start_identity_provider"]


@dataclass
class RunningProvider:
    process: subprocess.Popen
    url: str
    log_path: Path

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def set_fault(self, fault: str) -> None:
        httpx.post(f"{self.url}/control/fault", data={"fault": fault}).raise_for_status()

    def set_groups(self, username: str, groups: list[str] | None) -> None:
        body = {"username": username, "groups": json.dumps(groups)}
        httpx.post(f"{self.url}/control/groups", data=body).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_identity_provider(work_dir: Path, clients: dict[str, dict]) -> RunningProvider:
    """Start the provider with `clients` ({client_id: {secret, redirect_uris, ...}})."""
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / f"idp-{port}.sqlite3"
    log_path = work_dir / f"idp-{port}.log"
    env = {**os.environ, "IDP_CLIENTS": json.dumps(clients)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.sso.idp.serve", str(port), str(database)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    provider = RunningProvider(process, f"http://127.0.0.1:{port}", log_path)
    discovery = f"{provider.issuer}/.well-known/openid-configuration"
    if answers_ok(process, discovery, within=60, log=log_path.read_text, name="The provider"):
        return provider
    provider.stop()
    raise RuntimeError(f"the identity provider did not start:\n{log_path.read_text()}")

"""The image's HEALTHCHECK: ask this container's Daphne for `/healthz` as a proxy would.

A bare `GET http://127.0.0.1:8000/healthz` fails in two production set-ups: with HTTPS=1
Django redirects plain HTTP to https:// (301), and with ALLOWED_HOSTS naming only the
public host it refuses the Host `127.0.0.1` (400). So the probe reads the same variables
as the settings and sends what the proxy in front would: the first allowed host name
and, with HTTPS=1, `X-Forwarded-Proto: https`. It imports nothing from Django, so each
probe costs a few milliseconds, and it follows no redirect: only a 200 is healthy.

    python -m chatweb.healthprobe [PORT]     # exit 0 when healthy, 1 otherwise
"""

from __future__ import annotations

import http.client
import sys

from chatweb.env import env_bool, env_list

__all__ = ["main", "probe_headers"]

LOOPBACK = "127.0.0.1"


def probe_host(allowed_hosts: list[str]) -> str:
    """Return a Host header ALLOWED_HOSTS accepts, preferring a name given in full."""
    for host in allowed_hosts:
        if host != "*" and not host.startswith("."):
            return host
    for host in allowed_hosts:
        if host.startswith("."):
            return "health" + host  # ".example.com" allows any sub-domain
    return LOOPBACK


def probe_headers() -> dict[str, str]:
    headers = {"Host": probe_host(env_list("ALLOWED_HOSTS", [LOOPBACK]))}
    if env_bool("HTTPS", default=False):
        headers["X-Forwarded-Proto"] = "https"
    return headers


def main(port: int = 8000) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=4)
    try:
        connection.request("GET", "/healthz", headers=probe_headers())
        status = connection.getresponse().status
    except OSError as error:
        print(f"healthz: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"healthz: HTTP {status}", file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(*(int(arg) for arg in sys.argv[1:2])))

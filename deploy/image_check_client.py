"""The user's side of deploy/ci-image-check: sign in, chat, and stop the container mid-answer.

Run with the project's dev venv (httpx, websockets) against the container started by
that script. It checks what a user would notice:

1. the sign-in form signs in;
2. a message sent over the chat websocket gets a complete answer;
3. `podman stop` (SIGTERM, as a deploy does) while a slow answer streams: the answer
   still completes on the open socket and is saved complete, a message sent during the
   drain is told the server is restarting (and its socket closed with 4503, so the page
   reconnects and sends again) without being saved, and the process exits by itself
   before the stop timeout (no SIGKILL).

Exits non-zero, saying what failed, otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ANSWER = re.compile(r'<article id="message-(\d+)" class="message message-assistant status-(\w+)')
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
RESTARTING = "The server is restarting"


def step(text: str) -> None:
    print(f"-- {text}", flush=True)


def sign_in(url: str, username: str, password: str) -> str:
    """Sign in through the login form; return the session cookie's value."""
    with httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("/accounts/login/")
        form.raise_for_status()
        token = CSRF_INPUT.search(form.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{url}/accounts/login/"},
        )
        if response.status_code != 302 or "sessionid" not in client.cookies:
            raise SystemExit(f"sign-in failed: HTTP {response.status_code}")
        return client.cookies["sessionid"]


class Socket:
    """One tab's chat websocket, with every frame it received kept."""

    def __init__(self, url: str, session: str) -> None:
        self.url, self.session, self.frames = url, session, []

    async def __aenter__(self) -> Socket:
        self.ws = await connect(
            self.url.replace("http://", "ws://") + "/ws/chat/",
            additional_headers={"Cookie": f"sessionid={self.session}", "Origin": self.url},
            origin=None,
            ping_interval=None,
            open_timeout=10,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, **frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, predicate, timeout: float = 30.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                self.frames.append(frame)
                if predicate(frame):
                    return frame


def answer_status(frame: str) -> tuple[int, str] | None:
    match = ANSWER.search(frame)
    return (int(match.group(1)), match.group(2)) if match else None


def finished(frame: str) -> bool:
    status = answer_status(frame)
    return status is not None and status[1] != "streaming"


def database_row(database_url: str, answer_id: int) -> str:
    query = f"select status, length(text) from conversations_message where id = {answer_id}"
    return subprocess.run(
        ["psql", database_url, "-tAc", query], check=True, capture_output=True, text=True
    ).stdout.strip()


def database_count(database_url: str, text: str) -> int:
    query = "select count(*) from conversations_message where text = '" + text + "'"
    output = subprocess.run(
        ["psql", database_url, "-tAc", query], check=True, capture_output=True, text=True
    ).stdout
    return int(output.strip())


async def check(args: argparse.Namespace) -> None:
    step("signing in through the login form")
    session = sign_in(args.url, args.username, args.password)

    async with Socket(args.url, session) as tab, Socket(args.url, session) as other_tab:
        step("one turn over the websocket")
        await tab.send(action="send", conversation="", text="Hello from the image check")
        answer_id, status = answer_status(await tab.until(finished))
        if status != "complete":
            raise SystemExit(f"the first answer ended {status}")
        step(f"answer {answer_id} complete")

        step("a slow answer, then SIGTERM (podman stop) once its text streams")
        await tab.send(
            action="send", conversation="", text="Tell me a story", model=args.slow_model
        )
        await tab.until(lambda frame: answer_status(frame) is not None)
        slow_id = answer_status(tab.frames[-1])[0]
        for _ in range(3):  # some text, so the stop lands mid-answer
            await tab.until(lambda frame: True)
        stopped_at = time.monotonic()
        stop = subprocess.Popen(
            ["podman", "stop", "--time", str(args.stop_timeout), args.container],
            stdout=subprocess.DEVNULL,
        )
        await asyncio.sleep(1)  # the signal reaches Daphne's loop

        step("a message sent during the drain is refused with a retry")
        await other_tab.send(action="send", conversation="", text="Sent during the drain")
        refusal = await other_tab.until(lambda frame: RESTARTING in frame, timeout=10)
        if 'data-retry="1"' not in refusal:
            raise SystemExit("the restarting refusal does not ask the page to retry")
        try:
            await other_tab.until(lambda frame: False, timeout=10)
        except ConnectionClosed as closed:
            if closed.rcvd is None or closed.rcvd.code != 4503:
                raise SystemExit(f"the refused socket closed with {closed.rcvd}") from None
        step("refused, socket closed with 4503 (the page reconnects and sends again)")

        final = await tab.until(finished, timeout=args.stop_timeout)
        ended_id, status = answer_status(final)
        if (ended_id, status) != (slow_id, "complete"):
            raise SystemExit(f"answer {ended_id} ended {status} after SIGTERM")
        step(f"answer {slow_id} completed {time.monotonic() - stopped_at:.1f} s after SIGTERM")

    stop.wait(timeout=args.stop_timeout + 15)
    took = time.monotonic() - stopped_at
    exit_code = subprocess.run(
        ["podman", "inspect", args.container, "--format", "{{.State.ExitCode}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exit_code != "0" or took >= args.stop_timeout:
        raise SystemExit(f"the container exited {exit_code} after {took:.1f} s (killed?)")
    step(f"the container exited by itself with 0, {took:.1f} s after SIGTERM")
    log = subprocess.run(
        ["podman", "logs", args.container], check=True, capture_output=True, text=True
    )
    if "shutting down: every answer finished" not in log.stdout + log.stderr:
        raise SystemExit("the container's log does not say its answers finished")

    row = database_row(args.database_url, slow_id)
    status, length = row.split("|")
    if status != "complete" or int(length) == 0:
        raise SystemExit(f"answer {slow_id} saved as {row!r}")
    if database_count(args.database_url, "Sent during the drain"):
        raise SystemExit("the message refused during the drain was saved")
    step(
        f"answer {slow_id} saved complete ({length} characters); nothing saved for the refused one"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--slow-model", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--stop-timeout", type=int, default=75)
    parser.add_argument("--database-url", required=True)
    asyncio.run(check(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

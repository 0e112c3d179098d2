"""What one gateway event costs the app's client, per HTTP transport: `python -m bench.transports`.

Starts the project's simulator as its own process on a free port (so its CPU is not
counted here) and streams the same answer, many times over, three ways: through
`ResponsesClient` over httpx's default transport (httpcore), through `ResponsesClient` as
the app builds it (httpx over httpx-aiohttp), and, as the floor, through aiohttp alone
with a bare SSE split and the same typed-event parser. Each round runs every way once,
in turn, so a busy machine slows them alike; the table gives the median of the rounds
and, as the noise, the lowest and highest.

The figure is CPU time of this process (`time.process_time()`), which runs nothing but
the client's event loop: the cost of reading, splitting and parsing events, not the
time spent waiting for them. The simulator paces its tokens so that, as with a real
model, most events arrive in a read of their own.

Options: --responses (per way per round), --concurrency, --pace (tokens per second of
each stream), --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.common import QUESTION
from bench.harness import free_port, stop, wait_http
from conversations.gateway.client import ResponsesClient, Timeouts
from conversations.gateway.events import ResponseCompleted
from conversations.gateway.request import ResponseRequest
from conversations.gateway.sse import EventStreamParser

PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Trial:
    """What one batch of responses cost through one transport."""

    cpu_seconds: float
    responses: int
    events: int

    @property
    def us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6

    @property
    def ms_per_response(self) -> float:
        return self.cpu_seconds / self.responses * 1e3


def _httpcore(concurrency: int) -> httpx.AsyncBaseTransport:
    """httpx's own transport, with the pool limits the client used to give it."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=32)
    return httpx.AsyncHTTPTransport(limits=limits)


# What one response costs is measured three ways: through `ResponsesClient` over httpx's
# own transport, through `ResponsesClient` as the app builds it (httpx-aiohttp), and,
# as the floor, through aiohttp alone with a bare SSE split and the same event parser.
Streamer = Callable[[], Awaitable[int]]


@contextlib.asynccontextmanager
async def _through_client(
    transport: httpx.AsyncBaseTransport | None, url: str, key: str, options: argparse.Namespace
) -> AsyncIterator[Streamer]:
    timeouts = Timeouts(connect=5, read=30, write=30, pool=30)
    client = ResponsesClient(
        url, key, timeouts=timeouts, max_connections=options.concurrency, transport=transport
    )
    request = ResponseRequest(model="sim-chat", input=QUESTION)
    headers = {"X-Simulator-Pace": str(options.pace)}

    async def one_response() -> int:
        events = 0
        async for event in client.stream(request, headers=headers):
            events += 1
            if isinstance(event, ResponseCompleted):
                return events
        raise RuntimeError("A benchmark stream ended without response.completed.")

    async with client:
        yield one_response


@contextlib.asynccontextmanager
async def _through_aiohttp_alone(
    url: str, key: str, options: argparse.Namespace
) -> AsyncIterator[Streamer]:
    body = replace(ResponseRequest(model="sim-chat", input=QUESTION), stream=True).to_body()
    headers = {"Authorization": f"Bearer {key}", "X-Simulator-Pace": str(options.pace)}
    connector = aiohttp.TCPConnector(limit=options.concurrency)

    async def one_response() -> int:
        parser, events, pending = EventStreamParser(), 0, b""
        async with session.post(f"{url}/responses", json=body, headers=headers) as response:
            async for chunk in response.content.iter_any():
                # The simulator's messages are plain "event: …\ndata: …\n\n" blocks.
                *blocks, pending = (pending + chunk).split(b"\n\n")
                for block in blocks:
                    name, data = block.split(b"\n", 1)
                    if parser.feed(name[7:].decode(), data[6:].decode()) is not None:
                        events += 1
                if parser.finished:
                    return events
        raise RuntimeError("A benchmark stream ended without response.completed.")

    async with aiohttp.ClientSession(connector=connector) as session:
        yield one_response


WAYS: dict[str, Callable[[str, str, argparse.Namespace], Any]] = {
    "ResponsesClient, httpx default transport (httpcore)": lambda url, key, options: (
        _through_client(_httpcore(options.concurrency), url, key, options)
    ),
    "ResponsesClient, httpx-aiohttp (as the app runs)": lambda url, key, options: _through_client(
        None, url, key, options
    ),
    "floor: aiohttp alone, bare SSE split, same event parser": _through_aiohttp_alone,
}


async def _batch(one_response: Streamer, responses: int, concurrency: int) -> int:
    gate = asyncio.Semaphore(concurrency)

    async def gated() -> int:
        async with gate:
            return await one_response()

    return sum(await asyncio.gather(*(gated() for _ in range(responses))))


async def _trial(name: str, url: str, key: str, options: argparse.Namespace) -> Trial:
    async with WAYS[name](url, key, options) as one_response:
        # Warm up: open the pooled connections and the code paths before measuring.
        await _batch(one_response, options.concurrency, options.concurrency)
        started = time.process_time()
        events = await _batch(one_response, options.responses, options.concurrency)
        cpu = time.process_time() - started
    return Trial(cpu, options.responses, events)


def _row(name: str, trials: list[Trial]) -> str:
    per_event = [trial.us_per_event for trial in trials]
    per_response = [trial.ms_per_response for trial in trials]
    return (
        f"| {name} | {statistics.median(per_event):.0f} "
        f"({min(per_event):.0f} to {max(per_event):.0f}) | "
        f"{statistics.median(per_response):.2f} "
        f"({min(per_response):.2f} to {max(per_response):.2f}) |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--pace", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)

    key = f"sk-bench-{secrets.token_hex(8)}"
    port = free_port()
    simulator = subprocess.Popen(
        [
            *(sys.executable, "-m", "conversations.gateway.simulator"),
            *("--port", str(port), "--api-key", key, "--first-token-delay", "0"),
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(simulator, f"{url}/models", {"Authorization": f"Bearer {key}"})
        results: dict[str, list[Trial]] = {name: [] for name in WAYS}
        for _ in range(options.rounds):
            for name in WAYS:
                results[name].append(asyncio.run(_trial(name, url, key, options)))
    finally:
        stop(simulator)

    events = results[next(iter(WAYS))][0].events / options.responses
    print(
        f"{options.responses} responses x {options.rounds} rounds each way, "
        f"{options.concurrency} at a time, {options.pace:.0f} tokens/s each, "
        f"{events:.0f} events per response; CPU of the client process, "
        "median (lowest to highest)\n"
    )
    print("| way | CPU µs per event | CPU ms per response |")
    print("|---|---|---|")
    for name, trials in results.items():
        print(_row(name, trials))


if __name__ == "__main__":
    main()

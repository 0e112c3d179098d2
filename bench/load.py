"""Load clients: websockets driving the page's JSON frames, plus direct simulator streams.

Started by `bench.run` as its own process (so client CPU never counts as server CPU):

    python -m bench.load '<json config>'

The config names the scenario and its bounds; the result is one JSON line on stdout.
Every loop has a count and a deadline, and only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect

from bench.common import (
    ASSISTANT,
    CONVERSATION,
    QUESTION,
    frame_text,
    percentile,
    prefix_visibility,
    token_index,
)

TURN_TIMEOUT = 60.0
CONNECT_PARALLEL = 100


@dataclass
class Turn:
    sent: float
    first_frame: float | None = None
    first_text: float | None = None
    final: float | None = None
    status: str = "timeout"
    answer_id: int | None = None
    frames: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Direct:
    sent: float
    deltas: list[tuple[float, str]] = field(default_factory=list)
    done: bool = False


class Client:
    """One logged-in browser tab: a websocket with its user's session cookie."""

    def __init__(self, config: dict, session: str) -> None:
        self.config = config
        self.session = session
        self.conversation = ""
        self.ws = None

    async def open(self) -> None:
        self.ws = await connect(
            self.config["ws"],
            additional_headers={
                "Cookie": f"sessionid={self.session}",
                "Origin": self.config["origin"],
            },
            origin=None,
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=60,
            close_timeout=5,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def turn(self) -> Turn:
        frame = {
            "action": "send",
            "conversation": self.conversation,
            "text": QUESTION,
            "model": str(self.config["model"]),
        }
        result = Turn(sent=time.perf_counter())
        await self.ws.send(json.dumps(frame))
        blocks = tail = 0
        deadline = result.sent + TURN_TIMEOUT
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return result
            try:
                data = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                return result
            now = time.perf_counter()
            if result.first_frame is None:
                result.first_frame = now
            if (found := CONVERSATION.search(data)) is not None:
                self.conversation = found.group(1)
            for match in ASSISTANT.finditer(data):
                answer_id, status = int(match.group(1)), match.group(2)
                if result.answer_id is None and status == "streaming":
                    result.answer_id = answer_id
                elif answer_id == result.answer_id and status != "streaming":
                    result.final, result.status = now, status
                    return result
            answer_id, added, tail_chars = frame_text(data)
            if answer_id is None or answer_id != result.answer_id:
                continue
            blocks += added or 0
            tail = tail if tail_chars is None else tail_chars
            if blocks + tail > 0:
                if result.first_text is None:
                    result.first_text = now
                result.frames.append((now, blocks + tail))


async def direct_stream(config: dict, http: httpx.AsyncClient) -> Direct:
    """Ask the simulator directly, as the app does, timing each text delta."""
    result = Direct(sent=time.perf_counter())
    body = {"model": config["sim_model"], "input": QUESTION, "stream": True}
    async with http.stream("POST", "/responses", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "response.output_text.delta":
                result.deltas.append((time.perf_counter(), event["delta"]))
            elif event.get("type") in ("response.completed", "response.failed"):
                result.done = True
                break
    return result


def http_client(config: dict, streams: int) -> httpx.AsyncClient:
    assert urlsplit(config["sim"]).hostname == "127.0.0.1"
    return httpx.AsyncClient(
        base_url=config["sim"],
        headers={"Authorization": f"Bearer {config['api_key']}"},
        timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10),
    )


async def open_clients(config: dict, count: int) -> tuple[list[Client], int]:
    """Open `count` sockets, CONNECT_PARALLEL handshakes at a time; return them and failures."""
    if count > len(config["sessions"]):
        raise SystemExit(f"only {len(config['sessions'])} bench users, asked for {count}")
    assert urlsplit(config["ws"]).hostname == "127.0.0.1"
    gate = asyncio.Semaphore(CONNECT_PARALLEL)
    clients = [Client(config, session) for session in config["sessions"][:count]]

    async def one(client: Client) -> bool:
        async with gate:
            try:
                await client.open()
                return True
            except Exception:
                return False

    opened = await asyncio.gather(*(one(client) for client in clients))
    return [c for c, ok in zip(clients, opened, strict=True) if ok], opened.count(False)


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


# --- Analysis ------------------------------------------------------------------------


class Schedule:
    """When the simulator should emit each token of the answer, from a reference stream."""

    def __init__(self, config: dict, tokens: tuple[str, ...]) -> None:
        self.delay = config["first_token_delay"]
        self.pace = config["pace"]
        self.tokens = tokens
        self.visibility = prefix_visibility(tokens)

    def expected(self, start: float, index: int) -> float:
        return start + self.delay + (index + 1) / self.pace

    def turn_lags(self, turn: Turn) -> tuple[list[float], float | None]:
        """Return each frame's lag behind the schedule anchored at send, and the final's."""
        lags, index = [], 0
        for arrived, chars in turn.frames:
            index = token_index(self.visibility, chars, index)
            lags.append(arrived - self.expected(turn.sent, index))
        final = None
        if turn.final is not None and turn.status == "complete":
            final = turn.final - self.expected(turn.sent, len(self.tokens) - 1)
        return lags, final

    def direct_lags(self, stream: Direct) -> list[float]:
        return [t - self.expected(stream.sent, k) for k, (t, _) in enumerate(stream.deltas)]


def stats(values: list[float], prefix: str) -> dict:
    return {
        f"{prefix}_p50": percentile(values, 50),
        f"{prefix}_p99": percentile(values, 99),
        f"{prefix}_n": len(values),
    }


def summarise(config: dict, schedule: Schedule, turns: list[Turn], directs: list[Direct]) -> dict:
    frame_lags, final_lags, control_lags = [], [], []
    for turn in turns:
        lags, final = schedule.turn_lags(turn)
        frame_lags += lags
        if final is not None:
            final_lags.append(final)
    for stream in directs:
        control_lags += schedule.direct_lags(stream)
    first_text = [t.first_text - t.sent for t in turns if t.first_text is not None]
    first_frame = [t.first_frame - t.sent for t in turns if t.first_frame is not None]
    direct_first = [s.deltas[0][0] - s.sent for s in directs if s.deltas]
    return {
        "turns": len(turns),
        "complete": sum(t.status == "complete" for t in turns),
        "timeouts": sum(t.status == "timeout" for t in turns),
        "other_status": sorted({t.status for t in turns} - {"complete", "timeout"}),
        "frames": sum(len(t.frames) for t in turns),
        "answer_ids": [t.answer_id for t in turns if t.answer_id is not None],
        **stats(frame_lags, "lag"),
        **stats(final_lags, "final_lag"),
        **stats(control_lags, "control_lag"),
        **stats(first_text, "ttft"),
        **stats(first_frame, "first_frame"),
        **stats(direct_first, "direct_ttft"),
        "direct_complete": sum(s.done for s in directs),
        "expected_text": "".join(schedule.tokens),
    }


async def reference(config: dict) -> Schedule:
    async with http_client(config, 1) as http:
        stream = await direct_stream(config, http)
    return Schedule(config, tuple(delta for _, delta in stream.deltas))


# --- Scenarios -------------------------------------------------------------------------


async def scenario_idle(config: dict) -> dict:
    """Hold N idle sockets until the orchestrator has measured, then close them."""
    started = time.perf_counter()
    clients, failed = await open_clients(config, config["sockets"])
    opened_in = time.perf_counter() - started
    print("READY", flush=True)
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 120)
    await close_all(clients)
    return {"opened": len(clients), "failed": failed, "open_seconds": opened_in}


async def scenario_ttft(config: dict) -> dict:
    """Time to first token through the app vs directly, N streams started together."""
    schedule = await reference(config)
    streams, repeats = config["streams"], config.get("repeats", 1)
    controls = min(streams, config.get("controls", 50))
    clients, failed = await open_clients(config, streams)
    turns: list[Turn] = []
    directs: list[Direct] = []
    async with http_client(config, controls) as http:
        for _ in range(repeats):
            results = await asyncio.gather(
                *(client.turn() for client in clients),
                *(direct_stream(config, http) for _ in range(controls)),
            )
            turns += results[: len(clients)]
            directs += results[len(clients) :]
            await asyncio.sleep(0.3)
    await close_all(clients)
    return {
        "streams": streams,
        "connect_failed": failed,
        **summarise(config, schedule, turns, directs),
    }


async def scenario_ramp(config: dict) -> dict:
    """N clients each asking turn after turn for `duration` seconds; K direct controls."""
    schedule = await reference(config)
    streams, duration = config["streams"], config["duration"]
    stagger = config.get("stagger", 1.0)
    answer_seconds = config["first_token_delay"] + len(schedule.tokens) / config["pace"]
    max_turns = int(duration / answer_seconds) + 2
    controls = config.get("controls", 10)
    clients, failed = await open_clients(config, streams)
    begin = time.perf_counter()
    end = begin + stagger + duration
    turns: list[Turn] = []
    directs: list[Direct] = []

    async def client_loop(client: Client) -> None:
        await asyncio.sleep(random.uniform(0, stagger))
        for _ in range(max_turns):
            if time.perf_counter() >= end:
                return
            turn = await client.turn()
            turns.append(turn)
            if turn.status == "timeout":
                return

    async def control_loop(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(random.uniform(0, stagger))
        for _ in range(max_turns):
            if time.perf_counter() >= end:
                return
            directs.append(await direct_stream(config, http))

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    print("START", flush=True)
    async with http_client(config, controls) as http:
        await asyncio.wait_for(
            asyncio.gather(
                *(client_loop(c) for c in clients), *(control_loop(http) for _ in range(controls))
            ),
            stagger + duration + TURN_TIMEOUT + 30,
        )
    wall = time.perf_counter() - begin
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    await close_all(clients)
    return {
        "streams": streams,
        "connect_failed": failed,
        "wall": wall,
        "client_cpu_percent": 100 * client_cpu / wall,
        "answer_seconds": answer_seconds,
        **summarise(config, schedule, turns, directs),
    }


async def scenario_burst(config: dict) -> dict:
    """N sockets send at the same instant: first fragment, first text, completion."""
    return await scenario_ttft({**config, "repeats": 1, "controls": config.get("controls", 20)})


async def scenario_writes(config: dict) -> dict:
    """N clients, each `turns` turns one after another in one conversation."""
    schedule = await reference(config)
    clients, failed = await open_clients(config, config["streams"])
    print("START", flush=True)
    turns: list[Turn] = []

    async def client_loop(client: Client) -> None:
        for _ in range(config["turns"]):
            turns.append(await client.turn())

    await asyncio.wait_for(
        asyncio.gather(*(client_loop(c) for c in clients)), config["turns"] * TURN_TIMEOUT
    )
    await asyncio.sleep(2)  # let title generation finish before the sockets close
    await close_all(clients)
    return {"connect_failed": failed, **summarise(config, schedule, turns, [])}


SCENARIOS = {
    "idle": scenario_idle,
    "ttft": scenario_ttft,
    "ramp": scenario_ramp,
    "burst": scenario_burst,
    "writes": scenario_writes,
}


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(SCENARIOS[config["scenario"]](config))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

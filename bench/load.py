"""Load clients: websockets driving the page's JSON frames, plus direct simulator streams.

Started by `bench.run` as its own process (so client CPU never counts as server CPU):

    python -m bench.load '<json config>'

The config names the scenario, its bounds and the file the raw observations go to.
Every loop has a count and a deadline, and only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.common import ASSISTANT, CONVERSATION, frame_text, question, snapshot_text
from bench.harness import chat_socket

TURN_TIMEOUT = 60.0
CONNECT_PARALLEL = 100


@dataclass
class Turn:
    """One question asked through the app; times are wall-clock (time.time())."""

    sent: float
    question: int  # its number: which answer the simulator gives (bench.common.question)
    first_frame: float | None = None  # first frame of any kind: the turn shown as accepted
    first_fragment: float | None = None  # first frame of the answer's body, text or not
    first_text: float | None = None  # first frame that shows some of the answer's text
    final: float | None = None
    status: str = "timeout"
    answer_id: int | None = None
    frames: list[tuple[float, int]] = field(default_factory=list)  # (received, visible chars)


@dataclass
class Direct:
    """One request straight to the simulator, as the app makes it."""

    sent: float
    deltas: list[tuple[float, str]] = field(default_factory=list)
    done: bool = False


class Client:
    """One logged-in browser tab: a websocket with its user's session cookie.

    `url` is the app process this tab talks to; `numbers` numbers the questions of every
    client of the scenario, so that no two turns get the same answer.
    """

    def __init__(self, config: dict, url: str, session: str, numbers: Iterator[int]) -> None:
        self.config = config
        self.url = url
        self.session = session
        self.numbers = numbers
        self.conversation = ""
        self.ws = None

    async def open(self) -> None:
        origin = "http://" + urlsplit(self.url).netloc
        self.ws = await chat_socket(self.url, self.session, origin)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def turn(self) -> Turn:
        number = next(self.numbers)
        frame = {
            "action": "send",
            "conversation": self.conversation,
            "text": question(number),
            "model": str(self.config["model"]),
        }
        result = Turn(sent=time.time(), question=number)
        await self.ws.send(json.dumps(frame))
        blocks = tail = 0
        deadline = result.sent + TURN_TIMEOUT
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return result
            try:
                data = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                return result
            now = time.time()
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
            if result.first_fragment is None:
                result.first_fragment = now
            blocks += added or 0
            tail = tail if tail_chars is None else tail_chars
            if blocks + tail > 0:
                if result.first_text is None:
                    result.first_text = now
                result.frames.append((now, blocks + tail))


async def direct_stream(config: dict, http: httpx.AsyncClient) -> Direct:
    """Ask the simulator directly, as the app does, timing each text delta."""
    result = Direct(sent=time.time())
    body = {"model": config["sim_model"], "input": question(0), "stream": True}
    async with http.stream("POST", "/responses", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "response.output_text.delta":
                result.deltas.append((time.time(), event["delta"]))
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
    """Open `count` sockets, CONNECT_PARALLEL handshakes at a time; return them and failures.

    With several app processes (`config["ws"]` lists one URL each), client i talks to
    process i modulo their number, as a round-robin load balancer spreads them.
    """
    if count > len(config["sessions"]):
        raise SystemExit(f"only {len(config['sessions'])} bench users, asked for {count}")
    urls = config["ws"]
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in urls)
    gate = asyncio.Semaphore(CONNECT_PARALLEL)
    numbers = itertools.count(config["questions_from"])
    clients = [
        Client(config, urls[index % len(urls)], session, numbers)
        for index, session in enumerate(config["sessions"][:count])
    ]

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


# --- Scenarios -------------------------------------------------------------------------
#
# Each scenario returns its raw observations; bench.analysis turns them into numbers,
# with the simulator's record of when it sent each token.


def direct_record(stream: Direct) -> dict:
    return {
        "sent": stream.sent,
        "first": stream.deltas[0][0] if stream.deltas else None,
        "done": stream.done,
    }


async def scenario_idle(config: dict) -> dict:
    """Hold N idle sockets until the orchestrator has measured, then close them."""
    started = time.perf_counter()
    clients, failed = await open_clients(config, config["sockets"])
    opened_in = time.perf_counter() - started
    print("READY", flush=True)
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 120)
    await close_all(clients)
    return {"opened": len(clients), "failed": failed, "open_seconds": opened_in}


async def scenario_single(config: dict) -> dict:
    """One stream at a time: a turn through the app, then the same request directly."""
    clients, failed = await open_clients(config, 1)
    turns, directs = [], []
    async with http_client(config, 1) as http:
        for _ in range(config["repeats"]):
            turns.append(await clients[0].turn())
            directs.append(await direct_stream(config, http))
    await close_all(clients)
    return {
        "connect_failed": failed,
        "turns": [asdict(t) for t in turns],
        "directs": [direct_record(d) for d in directs],
    }


async def scenario_ramp(config: dict) -> dict:
    """N clients each asking turn after turn; K direct controls doing the same.

    Starts are spread over one answer's length, so after the first few seconds N answers
    stream at every moment and new turns start all the time (a steady state, not a burst).
    """
    streams, duration = config["streams"], config["duration"]
    stagger = config["answer_seconds"]
    max_turns = int((stagger + duration) / stagger) + 2
    controls = config.get("controls", 10)
    clients, failed = await open_clients(config, streams)
    begin = time.time()
    end = begin + stagger + duration
    turns: list[Turn] = []
    directs: list[Direct] = []

    async def client_loop(client: Client) -> None:
        await asyncio.sleep(random.uniform(0, stagger))
        for _ in range(max_turns):
            if time.time() >= end:
                return
            turn = await client.turn()
            turns.append(turn)
            if turn.status == "timeout":
                return

    async def control_loop(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(random.uniform(0, stagger))
        for _ in range(max_turns):
            if time.time() >= end:
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
    print("STOP", flush=True)
    wall = time.time() - begin
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    await close_all(clients)
    return {
        "streams": streams,
        "connect_failed": failed,
        "wall": wall,
        "client_cpu_percent": 100 * client_cpu / wall,
        "turns": [asdict(t) for t in turns],
        "directs": [direct_record(d) for d in directs],
    }


async def scenario_burst(config: dict) -> dict:
    """N sockets send at the same instant, with a few direct requests at that instant."""
    clients, failed = await open_clients(config, config["streams"])
    controls = config.get("controls", 20)
    if config.get("handshake"):
        # The orchestrator attaches its CPU sampler and profiler before the burst.
        print("READY", flush=True)
        await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 120)
    async with http_client(config, controls) as http:
        results = await asyncio.gather(
            *(client.turn() for client in clients),
            *(direct_stream(config, http) for _ in range(controls)),
        )
    print("STOP", flush=True)
    await close_all(clients)
    return {
        "streams": config["streams"],
        "connect_failed": failed,
        "turns": [asdict(t) for t in results[: len(clients)]],
        "directs": [direct_record(d) for d in results[len(clients) :]],
    }


async def scenario_writes(config: dict) -> dict:
    """N clients, each `turns` turns one after another in one conversation."""
    clients, failed = await open_clients(config, config["streams"])
    turns: list[Turn] = []

    async def client_loop(client: Client) -> None:
        for _ in range(config["turns"]):
            turns.append(await client.turn())

    await asyncio.wait_for(
        asyncio.gather(*(client_loop(c) for c in clients)), config["turns"] * TURN_TIMEOUT
    )
    await asyncio.sleep(2)  # let title generation finish before the sockets close
    await close_all(clients)
    return {"connect_failed": failed, "turns": [asdict(t) for t in turns]}


@dataclass
class Watch:
    """One member's socket following the group's answer; times are wall-clock."""

    process: int  # which app process it is connected to (0 generates: the owner's)
    owner: bool
    answer_id: int | None = None
    first_fragment: float | None = None
    first_text: float | None = None
    final: float | None = None
    status: str = "timeout"
    snapshots: int = 0
    frames: list[tuple[float, int]] = field(default_factory=list)  # (received, visible chars)


async def show(client: Client, conversation: str) -> None:
    """Open the conversation on the socket, as the page does, and wait for its transcript."""
    await client.ws.send(json.dumps({"action": "watch", "conversation": conversation}))
    while 'id="messages"' not in await asyncio.wait_for(client.ws.recv(), TURN_TIMEOUT):
        pass


async def keep_typing(client: Client, stop: asyncio.Event, every: float) -> int:
    """Send the page's typing frame every `every` seconds until `stop`; return how many."""
    sent = 0
    while not stop.is_set():
        await client.ws.send(json.dumps({"action": "typing"}))
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    return sent


async def follow_answer(client: Client, watch: Watch, deadline: float) -> Watch:
    """Read the socket until the group's new answer is final, noting what each frame shows.

    The conversation has no answer before it, so the first streaming bubble is the one.
    Snapshots (a socket following an answer that already streams) set the body; deltas
    append finished blocks and replace the open tail.
    """
    blocks = tail = 0
    while (remaining := deadline - time.time()) > 0:
        try:
            data = await asyncio.wait_for(client.ws.recv(), remaining)
        except TimeoutError:
            break
        now = time.time()
        for match in ASSISTANT.finditer(data):
            answer_id, status = int(match.group(1)), match.group(2)
            if watch.answer_id is None and status == "streaming":
                watch.answer_id = answer_id
            elif answer_id == watch.answer_id and status != "streaming":
                watch.final, watch.status = now, status
                return watch
        answer_id, snapshot_blocks, snapshot_tail = snapshot_text(data)
        if answer_id is not None:
            watch.snapshots += 1
            blocks, tail = snapshot_blocks, snapshot_tail
        else:
            answer_id, added, tail_chars = frame_text(data)
            blocks += added or 0
            tail = tail if tail_chars is None else tail_chars
        if answer_id is None or answer_id != watch.answer_id:
            continue
        if watch.first_fragment is None:
            watch.first_fragment = now
        if blocks + tail > 0:
            if watch.first_text is None:
                watch.first_text = now
            watch.frames.append((now, blocks + tail))
    return watch


async def scenario_group(config: dict) -> dict:
    """One group conversation, its members' sockets spread over the app processes.

    Every socket shows the conversation; a few members keep sending the typing frame
    once a second; then the owner (socket 0, on process 0) sends one message and every
    socket follows the answer to its final bubble. The orchestrator counts the channel
    layer's messages between READY/GO and STOP.
    """
    clients, failed = await open_clients(config, config["members"])
    if failed:
        raise SystemExit(f"{failed} of the group's sockets did not open")
    conversation = str(config["conversation"])
    await asyncio.gather(*(show(client, conversation) for client in clients))
    print("READY", flush=True)
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 120)
    stop = asyncio.Event()
    typists = clients[1 : 1 + config["typists"]]
    typing = [asyncio.create_task(keep_typing(c, stop, config["typing_every"])) for c in typists]
    await asyncio.sleep(config["typing_every"])  # the room is busy before the question
    urls = config["ws"]
    watches = [
        Watch(process=urls.index(client.url), owner=index == 0)
        for index, client in enumerate(clients)
    ]
    sent = time.time()
    deadline = sent + TURN_TIMEOUT
    following = [
        asyncio.create_task(follow_answer(client, watch, deadline))
        for client, watch in zip(clients, watches, strict=True)
    ]
    number = config["questions_from"]
    frame = {
        "action": "send",
        "conversation": conversation,
        "text": question(number),
        "model": str(config["model"]),
    }
    await clients[0].ws.send(json.dumps(frame))
    await asyncio.gather(*following)
    stop.set()
    typed = sum(await asyncio.gather(*typing))
    print("STOP", flush=True)
    await close_all(clients)
    return {
        "sent": sent,
        "question": number,
        "typing_frames": typed,
        "watches": [asdict(watch) for watch in watches],
    }


SCENARIOS = {
    "idle": scenario_idle,
    "single": scenario_single,
    "ramp": scenario_ramp,
    "burst": scenario_burst,
    "writes": scenario_writes,
    "group": scenario_group,
}


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(SCENARIOS[config["scenario"]](config))
    Path(config["result_file"]).write_text(json.dumps(result))
    print("RESULT", flush=True)


if __name__ == "__main__":
    main()

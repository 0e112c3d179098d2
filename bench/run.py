"""Run the benchmark suite: `python -m bench.run` (what `make bench` does).

Each run, for each backend (SQLite + in-memory layer, PostgreSQL + Redis), starts the
simulator as a standalone server at a fixed pace (logging when it sends each token),
Daphne with the app (DEBUG=0, its own DATA_DIR and database), and load clients in
another process; it samples Daphne's CPU and RSS with psutil and checks the database
afterwards. The whole suite runs BENCH_RUNS times (3 by default); the report gives the
median of each figure and, as its noise, the lowest and highest value. Then py-spy
profiles Daphne under load. Everything goes to bench/results/<timestamp>.md (and .json).

On PostgreSQL + Redis the steady levels run again on two Daphne processes (the same
database, the channel layer on Redis), the clients spread over them round-robin, as
production runs one process per core behind nginx. The group level (issue #23) runs
there too: one group conversation of 20 people, their sockets split over two processes,
5 of them typing, the owner asking once; it compares what the sockets on the generating
process and on the other one see, and counts the channel layer's messages (Redis MONITOR).
`BENCH_ONLY=single,group BENCH_BACKENDS=postgres make bench` runs it beside the one-user
figures it is compared with.

BENCH_QUICK=1 runs a smaller plan once (a few minutes); BENCH_BACKENDS=sqlite,postgres
picks backends; BENCH_RUNS=n repeats; BENCH_PROFILE=0 skips the profile. For a smoke run
of one part: BENCH_ONLY=two-process (a comma list of PARTS) runs only those parts,
BENCH_STREAMS=10,20 replaces the stream counts of the steady levels, and
BENCH_PG_DATABASE / BENCH_REDIS_URL keep it apart from another bench's database.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from bench import analysis, common, report
from bench.harness import free_port, pg_admin, stop, wait_http

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
PY = sys.executable
PACE = 30.0
FIRST_TOKEN_DELAY = 0.3
PG_DATABASE = os.environ.get("BENCH_PG_DATABASE", "chatweb_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUICK = os.environ.get("BENCH_QUICK") == "1"
# What a run measures, in order; BENCH_ONLY picks some of them.
PARTS = (
    "markdown",
    "idle",
    "writes",
    "single",
    "burst",
    "ramp",
    "two-process",
    "group",
    "limit",
    "pages",
    "profile",
)
ONLY = {part.strip() for part in os.environ.get("BENCH_ONLY", ",".join(PARTS)).split(",")}
if unknown := ONLY - set(PARTS):
    raise SystemExit(f"BENCH_ONLY: unknown parts {sorted(unknown)}; the parts are {PARTS}")

if QUICK:
    PLAN = {
        "runs": 1,
        "users": 500,
        "single": 5,
        "ramp": [100, 250],
        "two_process": [100, 250],
        "duration": 6.0,
        "burst": 200,
        "idle": 500,
        "writes": (10, 2),
        "pages": (1000, 10_000),
        "turn_starts": 200,
        "profile_streams": 100,
        "group": 20,
        "group_typists": 5,
    }
else:
    PLAN = {
        "runs": 3,
        "users": 1000,
        "single": 10,
        "ramp": [100, 250, 500, 1000],
        "two_process": [100, 250],
        "duration": 10.0,
        "burst": 200,
        "idle": 1000,
        "writes": (20, 2),
        "pages": (1000, 10_000),
        "turn_starts": 500,
        "profile_streams": 250,
        "group": 20,
        "group_typists": 5,
    }
PLAN["runs"] = int(os.environ.get("BENCH_RUNS", PLAN["runs"]))
if os.environ.get("BENCH_STREAMS"):
    PLAN["ramp"] = PLAN["two_process"] = [int(n) for n in os.environ["BENCH_STREAMS"].split(",")]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Processes -----------------------------------------------------------------------


class Sampler:
    """Samples the CPU time and RSS of the app's processes (one or more) in a thread.

    CPU is the processes' sum; RSS is the largest single process's peak.
    """

    def __init__(self, *pids: int) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak_rss = 0
        self.samples: list[tuple[float, float]] = []  # (wall clock, CPU seconds so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self.start_cpus = self._cpus()
        self.start_wall = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall = time.perf_counter() - self.start_wall
        used = [end - start for end, start in zip(self._cpus(), self.start_cpus, strict=True)]
        self.cpu_seconds = sum(used)
        self.cpu_percent = 100 * self.cpu_seconds / self.wall
        self.cpu_percent_each = [100 * seconds / self.wall for seconds in used]

    def _cpus(self) -> list[float]:
        return [cpu_seconds(process) for process in self.processes]

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(psutil.Error):
                self.samples.append((time.time(), sum(self._cpus())))
                rss = max(process.memory_info().rss for process in self.processes)
                self.peak_rss = max(self.peak_rss, rss)

    def cpu_between(self, start: float, end: float) -> tuple[float, float, float]:
        """Return (CPU seconds, first sample time, last sample time) within [start, end]."""
        inside = [sample for sample in self.samples if start <= sample[0] <= end]
        if len(inside) < 2:
            return 0.0, start, start
        return inside[-1][1] - inside[0][1], inside[0][0], inside[-1][0]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


@dataclass
class Backend:
    name: str
    label: str
    database_url: str
    redis_url: str | None
    data_dir: Path
    env: dict = field(default_factory=dict)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.database_url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(self.database_url[len("sqlite:///") :])) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()


def make_backend(name: str, workdir: Path) -> Backend:
    data_dir = workdir / name
    data_dir.mkdir(parents=True)
    if name == "sqlite":
        url = f"sqlite:///{data_dir / 'chatweb.sqlite3'}"
        return Backend(name, "SQLite + in-memory layer", url, None, data_dir)
    pg_admin(
        f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)", f"CREATE DATABASE {PG_DATABASE}"
    )
    url = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
    return Backend(name, "PostgreSQL + Redis", url, REDIS_URL, data_dir)


def drop_backend(backend: Backend) -> None:
    if backend.name == "postgres":
        pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


def app_env(backend: Backend, sim_url: str, api_key: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "OPENAI_API_KEY")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "chatweb.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATA_DIR": str(backend.data_dir),
            "DATABASE_URL": backend.database_url,
            "OPENAI_BASE_URL": sim_url,
            "OPENAI_API_KEY": api_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
        }
    )
    if backend.redis_url:
        env["REDIS_URL"] = backend.redis_url
    return env


def start_simulator(workdir: Path, api_key: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log_file = (workdir / f"simulator-{port}.log").open("wb")
    emissions = workdir / f"emissions-{port}.jsonl"
    emissions.touch()
    process = subprocess.Popen(
        [
            PY,
            "-m",
            "conversations.gateway.simulator",
            "--port",
            str(port),
            "--pace",
            str(PACE),
            "--first-token-delay",
            str(FIRST_TOKEN_DELAY),
            "--api-key",
            api_key,
            "--emission-log",
            str(emissions),
        ],
        cwd=PROJECT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(process, f"{url}/models", {"Authorization": f"Bearer {api_key}"})
    return process, url, emissions


def start_daphne(env: dict, workdir: Path, application: str = "chatweb.asgi:application"):
    port = free_port()
    command = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command += ["--websocket_timeout", "-1", application]
    log_file = (workdir / f"daphne-{port}.log").open("wb")
    process = subprocess.Popen(
        command, cwd=PROJECT, env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    wait_http(process, f"http://127.0.0.1:{port}/healthz")
    return process, port


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run_load(config: dict, workdir: Path, on_line=None) -> dict:
    """Run one scenario in a client process; `on_line(line, process)` sees its signals."""
    result_file = workdir / f"load-{secrets.token_hex(4)}.json"
    process = subprocess.Popen(
        [PY, "-m", "bench.load", json.dumps({**config, "result_file": str(result_file)})],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if on_line is not None:
            on_line(line.strip(), process)
    process.wait(timeout=30)
    if process.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"load client {config['scenario']} failed ({process.returncode})")
    return json.loads(result_file.read_text())


# --- One backend -----------------------------------------------------------------------


@dataclass
class Stack:
    """The processes of one backend's run, and what the analysis needs from them."""

    backend: Backend
    env: dict
    workdir: Path
    simulator: subprocess.Popen
    sim_url: str
    api_key: str
    emissions: Path
    sessions: list[str]
    model: int
    tokens: tuple[str, ...] = ()  # the answer to question(0), as the simulator streams it
    daphne: subprocess.Popen | None = None
    port: int = 0
    others: list[tuple[subprocess.Popen, int]] = field(default_factory=list)  # more app processes
    emissions_read: int = 0
    relay_log: Path | None = None  # set while the limit relay, not the app, is served
    scenarios: int = 0

    def start_daphne(self) -> None:
        self.daphne, self.port = start_daphne(self.env, self.workdir)
        self.relay_log = None

    def start_daphnes(self, count: int) -> None:
        """Serve the app on `count` Daphne processes: one database, one channel layer."""
        self.start_daphne()
        self.others = [start_daphne(self.env, self.workdir) for _ in range(count - 1)]

    @property
    def pids(self) -> list[int]:
        return [self.daphne.pid] + [process.pid for process, _ in self.others]

    @property
    def ports(self) -> list[int]:
        return [self.port] + [port for _, port in self.others]

    def start_relay(self) -> None:
        """Serve the limit relay (bench.relay) on Daphne, against the same simulator."""
        self.relay_log = self.workdir / f"relay-{secrets.token_hex(4)}.jsonl"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "OPENAI_API_KEY")
        }
        env.update(
            {
                "RELAY_GATEWAY": self.sim_url,
                "RELAY_API_KEY": self.api_key,
                "RELAY_MODEL": "sim-chat",
                "RELAY_LOG": str(self.relay_log),
            }
        )
        self.daphne, self.port = start_daphne(env, self.workdir, "bench.relay:application")

    @property
    def limit(self) -> bool:
        return self.relay_log is not None

    def visibility(self) -> tuple[int, ...] | None:
        """How frames map to tokens: the relay shows raw text, the app Markdown."""
        return common.raw_visibility(self.tokens) if self.limit else None

    def stop_daphne(self) -> None:
        """Stop every app (or relay) process."""
        for process, _ in self.others:
            stop(process)
        self.others = []
        if self.daphne is not None:
            stop(self.daphne)
            self.daphne = None

    def config(self, scenario: str, **extra) -> dict:
        """Return one scenario's config; its questions are numbered apart from the others'."""
        self.scenarios += 1
        return {
            "scenario": scenario,
            "ws": [f"ws://127.0.0.1:{port}/ws/chat/" for port in self.ports],
            "questions_from": self.scenarios * common.QUESTIONS_PER_SCENARIO,
            "sim": self.sim_url,
            "api_key": self.api_key,
            "model": self.model,
            "sim_model": "sim-chat",
            "sessions": self.sessions,
            "answer_seconds": FIRST_TOKEN_DELAY + len(self.tokens) / PACE,
            **extra,
        }

    def new_streams(self) -> dict[str, analysis.Stream]:
        """Return what the simulator sent since the last call."""
        streams, self.emissions_read = analysis.read_emissions(self.emissions, self.emissions_read)
        return streams

    def response_ids(self, turns: list[dict]) -> dict[int, str]:
        ids = [t["answer_id"] for t in turns if t["answer_id"] is not None]
        if self.limit:
            if not self.relay_log.exists():
                return {}
            lines = self.relay_log.read_text().splitlines()
            logged = dict(json.loads(line).values() for line in lines if line)
            return {i: logged[i] for i in ids if i in logged}
        if not ids:
            return {}
        marks = ",".join(["%s"] * len(ids))
        rows = self.backend.query(
            f"SELECT id, response_id FROM conversations_message WHERE id IN ({marks})",
            tuple(ids),
        )
        return dict(rows)

    def saved_in_full(self, turns: list[dict]) -> int | None:
        """Return how many of these answers the database holds complete, every word."""
        if self.limit:
            return None  # the relay keeps nothing
        reference = "".join(self.tokens)
        expected = {
            t["answer_id"]: common.answer_text(reference, t["question"])
            for t in turns
            if t["answer_id"] is not None
        }
        if not expected:
            return 0
        marks = ",".join(["%s"] * len(expected))
        rows = self.backend.query(
            "SELECT id, text FROM conversations_message "
            f"WHERE id IN ({marks}) AND status = 'complete'",
            tuple(expected),
        )
        return sum(text == expected[answer_id] for answer_id, text in rows)


def reference_tokens(sim_url: str, api_key: str, text: str | None = None) -> tuple[str, ...]:
    """Return the tokens of the answer to `text` (question(0) by default), as the simulator
    streams them.

    Every question's answer has tokens of the same lengths (see bench.common.QUESTION).
    """
    body = {"model": "sim-chat", "input": text or common.question(0), "stream": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    tokens = []
    with httpx.stream("POST", f"{sim_url}/responses", json=body, headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") == "response.output_text.delta":
                    tokens.append(event["delta"])
    return tuple(tokens)


def prepare(name: str, workdir: Path) -> Stack:
    backend = make_backend(name, workdir)
    api_key = "bench-" + secrets.token_hex(8)
    simulator, sim_url, emissions = start_simulator(workdir, api_key)
    env = app_env(backend, sim_url, api_key)
    manage(env, "migrate", "--noinput")
    manage(env, "seed_catalogue")
    seeded = json.loads(
        subprocess.run(
            [PY, "-m", "bench.seed", str(PLAN["users"])],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    stack = Stack(
        backend,
        env,
        workdir,
        simulator,
        sim_url,
        api_key,
        emissions,
        seeded["sessions"],
        seeded["model"],
    )
    stack.tokens = reference_tokens(sim_url, api_key)
    return stack


def bench_backend(name: str, workdir: Path) -> dict:
    """Measure one backend once; return {"metrics": flat numbers, "details": the rest}."""
    log(f"backend {name}: preparing")
    stack = prepare(name, workdir)
    metrics: dict = {}
    details: dict = {}
    try:
        stack.start_daphne()
        time.sleep(2)
        metrics["idle_rss"] = rss(stack.daphne.pid)
        if "idle" in ONLY:
            log(f"{name}: idle RSS {metrics['idle_rss'] / 2**20:.0f} MiB; {PLAN['idle']} sockets")
            sockets = idle_sockets(stack)
            metrics["per_socket"] = sockets["per_socket"]
            details["idle_sockets"] = sockets

        if name == "postgres" and "writes" in ONLY:
            log(f"{name}: database writes")
            metrics.update(database_writes(stack, details))

        if "single" in ONLY:
            log(f"{name}: one stream at a time, {PLAN['single']} turns")
            result = run_load(stack.config("single", repeats=PLAN["single"]), workdir)
            metrics.update(single_level(stack, result))

        if "burst" in ONLY:
            log(f"{name}: burst of {PLAN['burst']}")
            metrics.update(burst_level(stack, workdir))

        if "ramp" in ONLY:
            for streams in PLAN["ramp"]:
                log(f"{name}: {streams} concurrent streams for {PLAN['duration']:.0f} s")
                metrics.update(ramp_level(stack, streams, workdir))
                time.sleep(2)

        if name == "postgres" and "two-process" in ONLY:
            metrics.update(two_process_levels(stack, workdir))

        if name == "postgres" and "group" in ONLY:
            log(f"{name}: a group of {PLAN['group']} on two processes")
            metrics.update(group_level(stack, workdir, details))

        if "limit" in ONLY:
            stack.stop_daphne()
            stack.start_relay()
            time.sleep(1)
            log(f"{name}: limit relay, burst of {PLAN['burst']}")
            metrics.update({f"limit.{k}": v for k, v in burst_level(stack, workdir).items()})
            for streams in limit_levels():
                log(f"{name}: limit relay, {streams} concurrent streams")
                level = ramp_level(stack, streams, workdir)
                metrics.update({f"limit.{k}": v for k, v in level.items()})
                time.sleep(2)
    finally:
        stack.stop_daphne()
        stop(stack.simulator)
    if "pages" in ONLY:
        log(f"{name}: pages (in-process)")
        pages = inprocess(stack.env, "pages", *map(str, PLAN["pages"]))
        details["pages"] = pages
        if "error" not in pages:
            metrics.update(
                {
                    "page.long_ms": pages["conversation_long"]["ms"],
                    "page.long_queries": pages["conversation_long"]["queries"],
                    "page.short_queries": pages["conversation_short"]["queries"],
                    "sidebar.heavy_ms": pages["sidebar_heavy"]["ms"],
                    "sidebar.heavy_queries": pages["sidebar_heavy"]["queries"],
                    "sidebar.light_queries": pages["sidebar_light"]["queries"],
                }
            )
        log(f"{name}: turn starts (in-process)")
        starts = inprocess(stack.env, "turnstarts", str(PLAN["turn_starts"]))
        details["turn_starts"] = starts
        if "error" not in starts:
            metrics.update(
                {
                    "start.quick_cpu_ms": starts["quick"]["cpu_ms_p50"],
                    "start.quick_statements": starts["quick"]["statements"],
                    "start.orm_cpu_ms": starts["orm"]["cpu_ms_p50"],
                    "start.orm_statements": starts["orm"]["statements"],
                    "start.quick_wall_ms": starts["quick"]["wall_ms_p50"],
                    "start.orm_wall_ms": starts["orm"]["wall_ms_p50"],
                }
            )
    drop_backend(stack.backend)
    return {"metrics": metrics, "details": details}


def two_process_levels(stack: Stack, workdir: Path) -> dict:
    """The steady levels again on two Daphne processes, clients spread over them.

    What production does with two cores: one process per core, one GIL each; a socket
    stays on the process it reached, and the Redis channel layer carries whatever crosses
    processes. Returns the levels' figures under "two.", CPU the sum of both processes.
    Leaves no app process running.
    """
    metrics = {}
    stack.stop_daphne()
    stack.start_daphnes(2)
    time.sleep(2)
    for streams in PLAN["two_process"]:
        log(f"{stack.backend.name}: two processes, {streams} concurrent streams")
        level = ramp_level(stack, streams, workdir)
        metrics.update({f"two.{k}": v for k, v in level.items()})
        time.sleep(2)
    stack.stop_daphne()
    return metrics


def single_level(stack: Stack, result: dict) -> dict:
    """One stream at a time: first fragment against direct requests, lag, time to final."""
    turns = result["turns"]
    streams = stack.new_streams()
    numbers = {
        **analysis.first_fragment(turns, result["directs"]),
        **analysis.lag(turns, stack.response_ids(turns), streams, stack.tokens, stack.visibility()),
        **analysis.spread([t["final"] - t["sent"] for t in turns if t["final"]], "final"),
    }
    return {f"single.{key}": value for key, value in numbers.items()}


def group_level(stack: Stack, workdir: Path, details: dict) -> dict:
    """A group conversation on two Daphne processes (issue #23), figures under "group.".

    The first PLAN["group"] bench users become one group (bench.seed group); their
    sockets alternate between the processes, the owner's on the first, which therefore
    generates the answer. Between the sockets showing the conversation and the last
    final bubble, Redis MONITOR counts the channel layer's messages and psutil the
    processes' CPU. Leaves no app process running.
    """
    people = PLAN["group"]
    seeded = subprocess.run(
        [PY, "-m", "bench.seed", "group", str(people)],
        cwd=PROJECT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    group = json.loads(seeded.stdout)
    stack.stop_daphne()
    stack.start_daphnes(2)
    time.sleep(2)
    holder: dict = {}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "READY":
            holder["layer"] = LayerMonitor(stack.backend.redis_url).__enter__()
            holder["sampler"] = Sampler(*stack.pids).__enter__()
            process.stdin.write("GO\n")
            process.stdin.flush()
        elif line == "STOP":
            holder["sampler"].__exit__(None, None, None)
            holder["layer"].__exit__(None, None, None)

    config = stack.config(
        "group",
        conversation=group["conversation"],
        members=people,
        typists=PLAN["group_typists"],
        typing_every=1.0,
    )
    try:
        result = run_load(config, workdir, on_line)
    finally:
        stack.stop_daphne()
    streams = stack.new_streams()
    ids = stack.response_ids(result["watches"])
    layer, sampler = holder["layer"], holder["sampler"]
    numbers = {
        **analysis.group(result, ids, streams, group_tokens(stack, group["speaker"], result)),
        **layer.summary(),
        **{f"cpu_percent_{n}": cpu for n, cpu in enumerate(sampler.cpu_percent_each, 1)},
    }
    details["group"] = {
        "conversation": group["conversation"],
        "layer_messages_by_type": layer.by_type(),
        "live_fragments": [
            (round(m.time - result["sent"], 3), m.channel[-8:], m.reply)
            for m in layer.messages
            if m.kind == "live.fragment"
        ],
        "sockets": [
            {
                "process": w["process"],
                "owner": w["owner"],
                "first_text": w["first_text"] and round(w["first_text"] - result["sent"], 3),
                "final": w["final"] and round(w["final"] - result["sent"], 3),
                "frames": len(w["frames"]),
                "snapshots": w["snapshots"],
                "status": w["status"],
            }
            for w in result["watches"]
        ],
    }
    return {f"group.{key}": value for key, value in numbers.items()}


def group_tokens(stack: Stack, speaker: str, result: dict) -> tuple[str, ...]:
    """Return the tokens of the group's answer, as the simulator streamed them.

    In a group the model reads each question after its writer's name, and the simulator
    names the answer's function after the question's first words: the answer is not the
    reference's, nor are its tokens' lengths. Checked against the saved answer; () when
    they differ (then no frame is matched to a token).
    """
    said = f"{speaker}: {common.question(result['question'])}"
    tokens = reference_tokens(stack.sim_url, stack.api_key, said)
    answers = {watch["answer_id"] for watch in result["watches"] if watch["answer_id"]}
    rows = stack.backend.query(
        "SELECT text FROM conversations_message WHERE id = %s", (min(answers, default=0),)
    )
    if not rows or rows[0][0] != "".join(tokens):
        log("group: the saved answer is not the simulator's answer to what it was asked")
        return ()
    return tokens


@dataclass(frozen=True)
class LayerMessage:
    """One channel-layer message as Redis saw it."""

    time: float
    kind: str  # the event's "type"
    key: str  # the Redis key: one per app process for its sockets' and hub's channels
    channel: str  # the channel it is for ("" when MONITOR does not show it)
    reply: bool  # a live.fragment answering a watch (a snapshot), not a flush


class LayerMonitor:
    """Count the channel layer's messages on Redis while it runs (MONITOR, in a thread).

    channels-redis sends each message with one ZADD (a group's from a Lua script, which
    MONITOR shows too); the event's type, the channel it is for and, for live fragments,
    whether it answers a watch are read from its msgpack payload as MONITOR prints it.
    """

    TYPE = re.compile(r"\\xa4type\\x[0-9a-f]{2}([A-Za-z0-9_.]+)")
    CHANNEL = re.compile(r"(specific\.[A-Za-z0-9]+![A-Za-z0-9]+)")
    REPLY = "\\xa5reply\\xc3"
    # Messages of one flush leave within milliseconds; flushes are REMOTE_FLUSH_SECONDS apart.
    SAME_FLUSH_SECONDS = 0.05

    def __init__(self, redis_url: str) -> None:
        self.url = redis_url
        self.db = int(urlsplit(redis_url).path.strip("/") or 0)
        self.messages: list[LayerMessage] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LayerMonitor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        import redis

        redis.Redis.from_url(self.url).ping()  # a last command wakes the monitor up
        self._thread.join(10)

    def _run(self) -> None:
        import redis

        with redis.Redis.from_url(self.url).monitor() as monitor:
            self._ready.set()
            while not self._stop.is_set():
                entry = monitor.next_command()
                if entry and entry["db"] == self.db:
                    self._note(entry)

    def _note(self, entry: dict) -> None:
        words = entry["command"].split(" ", 3)
        if len(words) < 4 or words[0].upper() != "ZADD" or words[1].endswith("$inflight"):
            # Not a send: a receiver keeps what it took in "<key>$inflight" until done.
            return
        payload = words[3]
        kind = self.TYPE.search(payload)
        if kind is None:
            return  # a channel joining a group, not a message
        channel = self.CHANNEL.search(payload)
        self.messages.append(
            LayerMessage(
                entry["time"],
                kind.group(1),
                words[1],
                channel.group(1) if channel else "",
                self.REPLY in payload,
            )
        )

    def flush_count(self, times: list[float]) -> int:
        """Return how many flushes sent messages at `times`: one flush's leave together."""
        times = sorted(times)
        return sum(
            1
            for index, at in enumerate(times)
            if index == 0 or at - times[index - 1] > self.SAME_FLUSH_SECONDS
        )

    def by_type(self) -> dict[str, int]:
        return dict(collections.Counter(message.kind for message in self.messages))

    def summary(self) -> dict:
        """Live fragments sent per flush and to how many channels, and the rest."""
        fragments = [m for m in self.messages if m.kind == "live.fragment"]
        flushed = [m for m in fragments if not m.reply]
        flushes = self.flush_count([m.time for m in flushed])
        return {
            "layer.messages": len(self.messages),
            "layer.fragment_messages": len(flushed),
            "layer.fragment_channels": len({m.channel for m in flushed}),
            "layer.fragment_processes": len({m.key for m in flushed}),
            "layer.flushes": flushes,
            "layer.per_flush": len(flushed) / flushes if flushes else None,
            "layer.snapshot_replies": len(fragments) - len(flushed),
            "layer.watch_requests": sum(m.kind == "generation.watch" for m in self.messages),
        }


def limit_levels() -> list[int]:
    """The steady levels the limit relay is measured at: the app's, up to 250 streams."""
    return [n for n in PLAN["ramp"] if n <= 250]


def burst_level(stack: Stack, workdir: Path, spy_to: Path | None = None) -> dict:
    """N turns sent at one instant: when each shows, its first words, the CPU it cost.

    The CPU is Daphne's from the instant before the burst until the last answer ends,
    divided by the turns: everything one turn costs (start, fragments, finish).
    With `spy_to`, py-spy records Daphne over the same span.
    """
    holder: dict = {}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "READY":
            if spy_to is not None:
                seconds = int(FIRST_TOKEN_DELAY + len(stack.tokens) / PACE + 6)
                holder["spy"] = py_spy(stack.daphne.pid, seconds, spy_to)
                time.sleep(1)  # py-spy attaches before the burst
            holder["sampler"] = Sampler(*stack.pids).__enter__()
            process.stdin.write("GO\n")
            process.stdin.flush()
        elif line == "STOP":
            holder["sampler"].__exit__(None, None, None)

    config = stack.config("burst", streams=PLAN["burst"], handshake=True)
    result = run_load(config, workdir, on_line)
    if "spy" in holder:
        holder["spy"].wait(timeout=60)
    time.sleep(1)
    turns = result["turns"]
    streams_sent = stack.new_streams()
    ids = stack.response_ids(turns)
    outcome = analysis.outcome(turns)
    sampler = holder["sampler"]
    numbers = {
        **analysis.first_fragment(turns, result["directs"]),
        **outcome,
        "saved": stack.saved_in_full(turns),
        "cpu_percent": sampler.cpu_percent,
        "cpu_ms_per_turn": 1000 * sampler.cpu_seconds / max(outcome["started"], 1),
        "lag_p99": analysis.lag(turns, ids, streams_sent, stack.tokens, stack.visibility())[
            "lag_p99"
        ],
    }
    return {f"burst.{key}": value for key, value in numbers.items()}


def steady_cpu(sampler: Sampler, start: float, stack: Stack) -> tuple[float, float, float]:
    """The steady part of a ramp level: after every client started, before any stopped.

    Returns (window start, window end, Daphne CPU seconds in it).
    """
    answer = FIRST_TOKEN_DELAY + len(stack.tokens) / PACE
    cpu, first, last = sampler.cpu_between(start + answer, start + answer + PLAN["duration"])
    return first, last, cpu


def py_spy(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    """Start py-spy sampling `pid` (CPU only, every thread) into a raw profile file."""
    spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
    command = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "100", "-f", "raw"]
    return subprocess.Popen(
        [*command, "-o", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ramp_level(stack: Stack, streams: int, workdir: Path) -> dict:
    """N answers streaming at every moment: latency, lag, CPU, memory, what was saved.

    On several app processes, CPU % is their sum (cpu_percent_1, _2... each one's) and
    peak RSS the largest process's.
    """
    holder: dict = {}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "START":
            holder["sampler"] = Sampler(*stack.pids).__enter__()
            holder["start"] = time.time()
        elif line == "STOP":
            holder["sampler"].__exit__(None, None, None)
            holder["end"] = time.time()

    result = run_load(
        stack.config("ramp", streams=streams, duration=PLAN["duration"]), workdir, on_line
    )
    time.sleep(1)
    sampler = holder["sampler"]
    turns = result["turns"]
    streams_sent = stack.new_streams()
    ids = stack.response_ids(turns)
    numbers = {
        **analysis.first_fragment(turns, result["directs"]),
        **analysis.lag(turns, ids, streams_sent, stack.tokens, stack.visibility()),
        **analysis.drift(streams_sent, PACE, FIRST_TOKEN_DELAY),
        **analysis.cpu_per_unit(turns, *steady_cpu(sampler, holder["start"], stack)),
        **analysis.outcome(turns),
        "saved": stack.saved_in_full(turns),
        "cpu_percent": sampler.cpu_percent,
        **{
            f"cpu_percent_{number}": percent
            for number, percent in enumerate(sampler.cpu_percent_each, 1)
            if len(sampler.cpu_percent_each) > 1
        },
        "peak_rss": sampler.peak_rss,
        "client_cpu_percent": result["client_cpu_percent"],
        "connect_failed": result["connect_failed"],
    }
    return {f"ramp{streams}.{key}": value for key, value in numbers.items()}


def idle_sockets(stack: Stack) -> dict:
    measured: dict = {"before": rss(stack.daphne.pid)}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "READY":
            time.sleep(3)
            measured["after"] = rss(stack.daphne.pid)
            process.stdin.write("GO\n")
            process.stdin.flush()

    result = run_load(stack.config("idle", sockets=PLAN["idle"]), stack.workdir, on_line)
    opened = max(result["opened"], 1)
    return {
        **result,
        **measured,
        "per_socket": (measured.get("after", 0) - measured["before"]) / opened,
    }


def database_writes(stack: Stack, details: dict) -> dict:
    """Count what the database writes per answer, on PostgreSQL's own statistics.

    Write transactions are counted by transaction ids: PostgreSQL gives one only to a
    transaction that writes (cluster-wide, so nothing else may write meanwhile). Rows
    come from pg_stat_user_tables, which a backend flushes when it exits: Daphne is
    restarted around the measurement.
    """
    clients, turns_each = PLAN["writes"]
    before = pg_writes(stack.backend)
    result = run_load(stack.config("writes", streams=clients, turns=turns_each), stack.workdir)
    stack.stop_daphne()
    time.sleep(1)
    after = pg_writes(stack.backend)
    stack.start_daphne()
    stack.new_streams()
    answers = max(len(result["turns"]), 1)
    tables = {}
    for name, counts in after["tables"].items():
        delta = [a - b for a, b in zip(counts, before["tables"].get(name, (0, 0, 0)), strict=True)]
        if any(delta):
            tables[name] = dict(zip(("ins", "upd", "del"), delta, strict=True))
    rows = sum(sum(t.values()) for t in tables.values())
    transactions = after["xid"] - before["xid"] - 1  # the second probe took one
    details["writes"] = {"tables": tables, "answers": answers, "transactions": transactions}
    return {
        "writes.transactions": transactions / answers,
        "writes.rows": rows / answers,
        "writes.stream_seconds": len(stack.tokens) / PACE,
        "writes.complete": analysis.outcome(result["turns"])["complete"] / answers,
    }


def pg_writes(backend: Backend) -> dict:
    rows = backend.query("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    xid = backend.query("SELECT txid_current()")[0][0]
    return {"tables": {name: (i, u, d) for name, i, u, d in rows}, "xid": xid}


def inprocess(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [PY, "-m", "bench.inprocess", *args], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile(workdir: Path) -> dict:
    """Sample Daphne with py-spy (CPU only, every thread): steady streams, then a burst."""
    streams = PLAN["profile_streams"]
    log(f"profile: py-spy on Daphne, {streams} concurrent streams on SQLite")
    stack = prepare("sqlite", workdir / "profile")
    raw = workdir / "profile.txt"
    burst_raw = workdir / "profile-burst.txt"
    holder: dict = {}
    try:
        stack.start_daphne()

        def on_line(line: str, process: subprocess.Popen) -> None:
            if line == "START":
                holder["spy"] = py_spy(stack.daphne.pid, int(PLAN["duration"]), raw)

        run_load(stack.config("ramp", streams=streams, duration=PLAN["duration"]), workdir, on_line)
        holder["spy"].wait(timeout=60)
        stack.new_streams()
        time.sleep(2)
        log(f"profile: py-spy on Daphne, burst of {PLAN['burst']} on SQLite")
        burst_level(stack, workdir, spy_to=burst_raw)
    finally:
        stack.stop_daphne()
        stop(stack.simulator)

    def summary(path: Path) -> dict:
        return report.summarise_profile(path.read_text() if path.exists() else "")

    return {
        "streams": streams,
        **summary(raw),
        "burst": {"turns": PLAN["burst"], **summary(burst_raw)},
    }


def aggregate(runs: list[dict]) -> dict:
    """Median, lowest and highest of each number over the runs, per backend."""
    out: dict = {}
    for backend in runs[0]["backends"]:
        keys = runs[0]["backends"][backend]["metrics"]
        out[backend] = {}
        for key in keys:
            values = [r["backends"][backend]["metrics"].get(key) for r in runs]
            numbers = [v for v in values if isinstance(v, int | float) and v is not None]
            if numbers and len(numbers) == len(values):
                out[backend][key] = {
                    "median": statistics.median(numbers),
                    "low": min(numbers),
                    "high": max(numbers),
                }
            else:
                out[backend][key] = {"median": values[-1], "low": None, "high": None}
    ratios = [r["markdown"]["ratio"] for r in runs if "ratio" in r.get("markdown", {})]
    if ratios:
        out["markdown"] = {
            "median": statistics.median(ratios),
            "low": min(ratios),
            "high": max(ratios),
        }
    return out


# --- Machine and main ------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def run(*command: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(
                command, cwd=PROJECT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        return ""

    commit = run("git", "rev-parse", "--short", "HEAD")
    if run("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    versions = {}
    for package in ("django", "channels", "daphne", "twisted", "channels_redis", "httpx"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    started = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    backends = [b.strip() for b in os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",")]
    results: dict = {
        "machine": machine(),
        "quick": QUICK,
        "plan": PLAN,
        "settings": {
            "pace_tokens_per_second": PACE,
            "first_token_delay": FIRST_TOKEN_DELAY,
            "DEBUG": 0,
            "DATABASE_POOL_SIZE": "10 (default)",
            "DATABASE_THREADS": "4 (default)",
            "CHAT_MAX_CONCURRENT_GENERATIONS": "3 (default)",
        },
        "runs": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="chatweb-bench-"))
    try:
        for number in range(1, PLAN["runs"] + 1):
            log(f"run {number} of {PLAN['runs']}")
            markdown = inprocess(dict(os.environ), "markdown") if "markdown" in ONLY else {}
            run: dict = {"markdown": markdown, "backends": {}}
            for name in backends:
                run_dir = workdir / f"run{number}"
                run_dir.mkdir(exist_ok=True)
                run["backends"][name] = bench_backend(name, run_dir)
            results["runs"].append(run)
        results["summary"] = aggregate(results["runs"])
        if os.environ.get("BENCH_PROFILE", "1") == "1" and "profile" in ONLY:
            results["profile"] = profile(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_seconds"] = time.perf_counter() - started
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    text = report.render(results)
    (RESULTS / f"{stamp}.md").write_text(text)
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=1, default=str))
    print(text)
    log(f"wrote bench/results/{stamp}.md in {results['elapsed_seconds']:.0f} s")


if __name__ == "__main__":
    main()

"""Run the benchmark suite: `python -m bench.run` (what `make bench` does).

For each backend (SQLite + in-memory layer, PostgreSQL + Redis) it starts the simulator
as a standalone server at a fixed pace, Daphne with the app (DEBUG=0, its own DATA_DIR
and database), and load clients in another process; it samples Daphne's CPU and RSS
with psutil, checks the database afterwards, and writes bench/results/<timestamp>.md.

BENCH_QUICK=1 runs a ~2-minute-per-backend subset; BENCH_BACKENDS=sqlite,postgres picks
backends; BENCH_PROFILE=0 skips the pyinstrument run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from bench import report

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
PY = sys.executable
PACE = 30.0
FIRST_TOKEN_DELAY = 0.3
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "chatweb_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
QUICK = os.environ.get("BENCH_QUICK") == "1"

if QUICK:
    PLAN = {
        "users": 500,
        "ttft": [(1, 5), (100, 1)],
        "ramp": [100, 250],
        "duration": 6.0,
        "burst": 200,
        "idle": 500,
        "writes": (10, 2),
        "pages": (1000, 10_000),
        "profile": False,
    }
else:
    PLAN = {
        "users": 1000,
        "ttft": [(1, 10), (100, 2), (500, 1)],
        "ramp": [100, 250, 500, 1000],
        "duration": 10.0,
        "burst": 200,
        "idle": 1000,
        "writes": (20, 2),
        "pages": (1000, 10_000),
        "profile": True,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Processes -----------------------------------------------------------------------


class Sampler:
    """Samples one process's CPU time and RSS in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self.start_cpu = self._cpu()
        self.start_wall = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self.start_cpu
        self.wall = time.perf_counter() - self.start_wall
        self.cpu_percent = 100 * self.cpu_seconds / self.wall

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)


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
    data_dir.mkdir()
    if name == "sqlite":
        url = f"sqlite:///{data_dir / 'chatweb.sqlite3'}"
        return Backend(name, "SQLite + in-memory layer", url, None, data_dir)
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {PG_DATABASE}")
    url = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"
    return Backend(name, "PostgreSQL + Redis", url, REDIS_URL, data_dir)


def drop_backend(backend: Backend) -> None:
    if backend.name == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


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


def wait_http(process: subprocess.Popen, url: str, headers: dict | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in 60 s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_simulator(workdir: Path, api_key: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log_file = (workdir / f"simulator-{port}.log").open("wb")
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
        ],
        cwd=PROJECT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(process, f"{url}/models", {"Authorization": f"Bearer {api_key}"})
    return process, url


def start_daphne(env: dict, workdir: Path, profile_to: Path | None = None):
    port = free_port()
    command = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command += ["--websocket_timeout", "-1", "chatweb.asgi:application"]
    if profile_to is not None:
        command = [PY, "-m", "pyinstrument", "-r", "text", "-o", str(profile_to), *command[1:]]
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


def run_load(config: dict, on_line=None, env: dict | None = None) -> dict:
    """Run one scenario in a client process; `on_line(line, process)` sees its signals."""
    process = subprocess.Popen(
        [PY, "-m", "bench.load", json.dumps(config)],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    result = None
    for line in process.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif on_line is not None:
            on_line(line.strip(), process)
    process.wait(timeout=30)
    if result is None:
        raise RuntimeError(f"load client {config['scenario']} failed ({process.returncode})")
    return result


# --- One backend -----------------------------------------------------------------------


def saved_in_full(backend: Backend, after_id: int, expected: str) -> dict:
    rows = backend.query(
        "SELECT status, text = %s FROM conversations_message WHERE role = 'assistant' AND id > %s",
        (expected, after_id),
    )
    return {
        "db_answers": len(rows),
        "db_complete": sum(status == "complete" for status, _ in rows),
        "db_full_text": sum(bool(full) for _, full in rows),
    }


def max_message_id(backend: Backend) -> int:
    return backend.query("SELECT COALESCE(MAX(id), 0) FROM conversations_message")[0][0]


def pg_writes(backend: Backend) -> dict:
    rows = backend.query("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
    commits = backend.query(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (PG_DATABASE,)
    )[0][0]
    return {"tables": {name: (i, u, d) for name, i, u, d in rows}, "commits": commits}


def writes_delta(before: dict, after: dict) -> dict:
    tables = {}
    for name, (i, u, d) in after["tables"].items():
        i0, u0, d0 = before["tables"].get(name, (0, 0, 0))
        if (i - i0) or (u - u0) or (d - d0):
            tables[name] = {"ins": i - i0, "upd": u - u0, "del": d - d0}
    return {"tables": tables, "commits": after["commits"] - before["commits"]}


def bench_backend(name: str, workdir: Path) -> dict:
    log(f"backend {name}: preparing")
    backend = make_backend(name, workdir)
    api_key = "bench-" + secrets.token_hex(8)
    simulator, sim_url = start_simulator(workdir, api_key)
    env = app_env(backend, sim_url, api_key)
    out: dict = {"label": backend.label}
    daphne = None
    try:
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
        daphne, port = start_daphne(env, workdir)
        base = {
            "ws": f"ws://127.0.0.1:{port}/ws/chat/",
            "origin": f"http://127.0.0.1:{port}",
            "sim": sim_url,
            "api_key": api_key,
            "model": seeded["model"],
            "sim_model": "sim-chat",
            "sessions": seeded["sessions"],
            "pace": PACE,
            "first_token_delay": FIRST_TOKEN_DELAY,
        }
        time.sleep(2)
        out["idle_rss"] = rss(daphne.pid)
        log(f"{name}: idle Daphne RSS {out['idle_rss'] / 2**20:.1f} MiB; opening idle sockets")
        out["idle_sockets"] = idle_sockets(base, daphne.pid)

        if name == "postgres":
            writes, n_turns = PLAN["writes"], PLAN["writes"][1]
            log(f"{name}: database writes, {writes[0]} clients x {n_turns} turns")
            before = pg_writes(backend)
            result = run_load(
                {**base, "scenario": "writes", "streams": writes[0], "turns": n_turns}
            )
            stop(daphne)  # a backend flushes its statistics when it exits
            time.sleep(1)
            delta = writes_delta(before, pg_writes(backend))
            daphne, port = start_daphne(env, workdir)
            base["ws"] = f"ws://127.0.0.1:{port}/ws/chat/"
            base["origin"] = f"http://127.0.0.1:{port}"
            out["writes"] = {**result, **delta, "answer_ids": None}

        out["ttft"] = []
        for streams, repeats in PLAN["ttft"]:
            log(f"{name}: time to first token, {streams} streams x {repeats}")
            result = run_load({**base, "scenario": "ttft", "streams": streams, "repeats": repeats})
            out["ttft"].append({**result, "answer_ids": None})

        log(f"{name}: burst of {PLAN['burst']}")
        marker = max_message_id(backend)
        result = run_load({**base, "scenario": "burst", "streams": PLAN["burst"]})
        time.sleep(1)
        out["burst"] = {**result, **saved_in_full(backend, marker, result["expected_text"])}
        out["burst"]["answer_ids"] = None

        out["ramp"] = []
        for streams in PLAN["ramp"]:
            log(f"{name}: ramp {streams} streams for {PLAN['duration']} s")
            out["ramp"].append(ramp_level(backend, base, daphne.pid, streams))
            time.sleep(2)
    finally:
        if daphne is not None:
            stop(daphne)
        stop(simulator)
    log(f"{name}: pages (in-process)")
    out["pages"] = inprocess(env, "pages", *map(str, PLAN["pages"]))
    drop_backend(backend)
    return out


def ramp_level(backend: Backend, base: dict, pid: int, streams: int) -> dict:
    marker = max_message_id(backend)
    holder: dict = {}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "START":
            holder["sampler"] = Sampler(pid).__enter__()

    result = run_load(
        {**base, "scenario": "ramp", "streams": streams, "duration": PLAN["duration"]},
        on_line,
    )
    sampler = holder["sampler"]
    sampler.__exit__(None, None, None)
    time.sleep(1)
    return {
        **result,
        "answer_ids": None,
        "daphne_cpu_percent": sampler.cpu_percent,
        "daphne_peak_rss": sampler.peak_rss,
        **saved_in_full(backend, marker, result["expected_text"]),
    }


def idle_sockets(base: dict, pid: int) -> dict:
    measured: dict = {"before": rss(pid)}

    def on_line(line: str, process: subprocess.Popen) -> None:
        if line == "READY":
            time.sleep(3)
            measured["after"] = rss(pid)
            process.stdin.write("GO\n")
            process.stdin.flush()

    result = run_load({**base, "scenario": "idle", "sockets": PLAN["idle"]}, on_line)
    opened = max(result["opened"], 1)
    return {
        **result,
        **measured,
        "per_socket": (measured.get("after", 0) - measured["before"]) / opened,
    }


def inprocess(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [PY, "-m", "bench.inprocess", *args], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile(workdir: Path) -> dict:
    """Profile Daphne with pyinstrument under the 500-stream ramp on SQLite."""
    streams = 100 if QUICK else 250
    log(f"profile: Daphne under pyinstrument, {streams} streams on SQLite")
    data_dir = workdir / "profile"
    data_dir.mkdir()
    backend = Backend(
        "sqlite", "profile", f"sqlite:///{data_dir / 'chatweb.sqlite3'}", None, data_dir
    )
    api_key = "bench-" + secrets.token_hex(8)
    simulator, sim_url = start_simulator(workdir, api_key)
    env = app_env(backend, sim_url, api_key)
    output = workdir / "profile.txt"
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "seed_catalogue")
        seeded = json.loads(
            subprocess.run(
                [PY, "-m", "bench.seed", str(streams)],
                cwd=PROJECT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        daphne, port = start_daphne(env, workdir, profile_to=output)
        try:
            config = {
                "ws": f"ws://127.0.0.1:{port}/ws/chat/",
                "origin": f"http://127.0.0.1:{port}",
                "sim": sim_url,
                "api_key": api_key,
                "model": seeded["model"],
                "sim_model": "sim-chat",
                "sessions": seeded["sessions"],
                "pace": PACE,
                "first_token_delay": FIRST_TOKEN_DELAY,
                "scenario": "ramp",
                "streams": streams,
                "duration": 6.0,
            }
            result = run_load(config)
        finally:
            stop(daphne, signal.SIGINT)
    finally:
        stop(simulator)
    text = output.read_text(errors="replace") if output.exists() else ""
    shutil.copy(output, RESULTS / "profile-latest.txt") if output.exists() else None
    return {"streams": streams, "lag_p99": result.get("lag_p99"), "text": text}


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
    backends = os.environ.get("BENCH_BACKENDS", "sqlite,postgres").split(",")
    results: dict = {
        "machine": machine(),
        "quick": QUICK,
        "plan": PLAN,
        "settings": {
            "pace_tokens_per_second": PACE,
            "first_token_delay": FIRST_TOKEN_DELAY,
            "DEBUG": 0,
            "DATABASE_POOL_SIZE": "10 (default)",
            "CHAT_MAX_CONCURRENT_GENERATIONS": "3 (default)",
        },
        "backends": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="chatweb-bench-"))
    try:
        log("markdown (in-process)")
        results["markdown"] = inprocess(dict(os.environ), "markdown")
        for name in backends:
            results["backends"][name] = bench_backend(name.strip(), workdir)
        wanted = os.environ.get("BENCH_PROFILE", "1" if PLAN["profile"] else "0")
        if wanted == "1":
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

"""Process-level failures: real Daphne processes killed, Redis stopped, PostgreSQL
connections cut, a browser's socket dropped mid-stream.

Every server is a real subprocess (tests/servers.py) talking to the session's simulator
over HTTP. The tests that kill or cut infrastructure only ever touch what they started:
their own Daphne processes, their own redis-server on a free port, and the PostgreSQL
sessions of their own server (found by the application name the test gives it). What
each scenario showed is written to test-artifacts/reliability.json for
`python -m tests.reliability_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from datetime import timedelta

import httpx
import pytest
from django.db import connection, connections
from django.utils import timezone

from conversations.models import Message, ModelChoice, QuotaCounter, RunningAnswer
from tests.servers import ARTIFACTS, free_port
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RECORDER_JS,
    STORY,
    STORY_ANSWER,
    body_text,
    folded,
    latest_answer_id,
    rendered_text,
    repeated_lines,
    send_message,
    sign_in,
    streaming_states,
    wait_for_live_text,
    wait_for_socket,
    wait_for_status,
)
from tests.support.chat import final_answer
from tests.support.tabs import ANSWER, Tab, arun, session_id
from tests.support.turns import model_pk
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

RESULTS = ARTIFACTS / "reliability.json"
SLOW = "sim-chat+fault=slow:8"  # about three seconds for the story
COMPOSER_ERROR = re.compile(r'id="composer-error"[^>]*>\s*([^<]+)')

_rows: list[dict] = []


needs_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs DATABASE_URL pointing at PostgreSQL (CI runs the suite on it)",
)


def record(scenario: str, observed: str) -> None:
    _rows.append({"scenario": scenario, "observed": observed})


@pytest.fixture(scope="module", autouse=True)
def write_results():
    yield
    if _rows:
        ARTIFACTS.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(_rows, indent=2, ensure_ascii=False) + "\n")


# --- Helpers ------------------------------------------------------------------------------


def healthz(server) -> int:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=6).status_code
    except httpx.TransportError:
        return 0


def final_other_than(*known: int):
    """Return a predicate for a frame that finishes an answer not in `known`."""

    def finished_new(frame: str) -> int | None:
        for match in ANSWER.finditer(frame):
            pk, status = int(match.group(1)), match.group(2)
            if pk not in known and status != "streaming":
                return pk
        return None

    return finished_new


def conversation_of(answer_id: int) -> int:
    """Look the answer's conversation up from a worker thread, closing its connection."""
    try:
        return Message.objects.get(pk=answer_id).conversation_id
    finally:
        connections.close_all()


class OwnRedis:
    """A redis-server of this test's own on a free port, stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(ready, timeout=10, what="redis-server start-up")
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis():
    if not shutil.which("redis-server"):
        pytest.skip("no redis-server on PATH")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


# --- 2. A process killed mid-stream -------------------------------------------------------


@needs_postgresql
def test_sigkilled_process_leaves_an_interrupted_answer_that_can_be_retried(
    servers, catalogue, make_user
):
    user = make_user("ming")
    session = session_id(user)
    slow, plain = model_pk(SLOW), model_pk("sim-chat")
    first = servers()

    async def start_story() -> int:
        async with Tab(first, session) as tab:
            await tab.send(action="send", conversation="", text=STORY, model=str(slow))
            frame = await tab.until(ANSWER.search)
            return int(ANSWER.search(frame).group(1))

    answer_id = arun(start_story())
    # A checkpoint (about once a second) has saved some text, but the answer goes on.
    wait_until(
        lambda: Message.objects.filter(pk=answer_id, status="streaming").exclude(text="").exists(),
        what="a checkpoint",
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    killed = Message.objects.get(pk=answer_id)
    assert killed.status == "streaming"
    checkpoint = killed.text
    assert checkpoint and STORY_ANSWER.startswith(checkpoint) and checkpoint != STORY_ANSWER

    # The orphan grace period (models.ORPHAN_AFTER) passes: backdate the heartbeat.
    RunningAnswer.objects.filter(pk=answer_id).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    second = servers()

    async def open_a_new_chat() -> None:
        async with Tab(second, session) as tab:
            await tab.send(action="watch", conversation="")

    # A tab on another conversation starts the new process serving; nobody opens the
    # orphan's conversation, and its answer is settled all the same.
    arun(open_a_new_chat())
    wait_until(
        lambda: Message.objects.filter(pk=answer_id, status="interrupted").exists(),
        what="recovery",
    )
    recovered = Message.objects.get(pk=answer_id)
    assert (recovered.status, recovered.error_code) == ("interrupted", "interrupted")
    assert recovered.text == checkpoint
    assert "restarted" in recovered.error
    assert list(QuotaCounter.objects.filter(user=user).values_list("reserved", flat=True)) == [
        0,
        0,
    ]

    async def retry() -> int:
        async with Tab(second, session) as tab:
            await tab.send(action="watch", conversation=str(killed.conversation_id))
            await tab.send(action="retry", message=str(answer_id), model=str(plain))
            done = final_other_than(answer_id)
            return done(await tab.until(done))

    retried = Message.objects.get(pk=arun(retry()))
    assert retried.pk != answer_id and retried.parent_id == recovered.parent_id
    assert retried.status == "complete" and retried.text
    record(
        "Daphne process SIGKILLed mid-stream (PostgreSQL)",
        f"answer left `streaming` with {len(checkpoint)} checkpointed characters; after the "
        "grace period, a new process marked it `interrupted` as it started serving (nobody "
        "opened the conversation) with the checkpoint text and the quota hold released; "
        "Retry completed.",
    )


# --- 3. Redis stopped and back; PostgreSQL connections cut ------------------------------


def test_redis_outage_is_reported_and_recovered_from(servers, own_redis, catalogue, make_user):
    user = make_user("ming")
    session = session_id(user)
    plain = model_pk("sim-chat")
    a = servers(REDIS_URL=own_redis.url)
    b = servers(REDIS_URL=own_redis.url)
    assert healthz(a) == healthz(b) == 200

    async def during_outage() -> dict:
        seen: dict = {}
        async with Tab(a, session) as tab:
            conversation_answer = await tab.turn("Hello", model=plain)
            seen["before"] = conversation_answer
            own_redis.stop()
            await asyncio.to_thread(
                wait_until, lambda: healthz(a) == 503, timeout=15, what="healthz 503"
            )
            seen["healthz"] = healthz(a)
            # Whatever the socket does now, a message typed during the outage is either
            # answered or refused in words, never silently dropped.
            try:
                await tab.send(action="send", conversation="", text="Typed during the outage")
                answered = final_other_than(conversation_answer)
                frame = await tab.until(
                    lambda f: answered(f) or COMPOSER_ERROR.search(f), timeout=15
                )
                seen["send"] = "answered" if answered(frame) else "refused"
                seen["send_frame"] = frame
            except Exception as error:  # the socket closed: the page shows "Reconnecting…"
                seen["send"] = f"socket closed ({error.__class__.__name__})"
        # A new socket cannot join its user's group: it is closed, not left hanging.
        try:
            async with Tab(a, session) as tab:
                await tab.until(lambda f: False, timeout=5)
            seen["reconnect"] = "open"
        except TimeoutError:
            seen["reconnect"] = "left open without a channel layer"
        except Exception as error:
            seen["reconnect"] = f"closed ({error.__class__.__name__})"
        return seen

    seen = arun(during_outage())
    assert seen["healthz"] == 503
    assert seen["reconnect"].startswith("closed"), seen["reconnect"]
    typed = Message.objects.filter(role="user", text="Typed during the outage").first()
    if seen["send"] == "answered":
        assert typed is not None
        answer = Message.objects.get(parent=typed)
        assert answer.status == "complete"
    elif seen["send"] == "refused":
        assert COMPOSER_ERROR.search(seen["send_frame"]).group(1).strip()
    else:
        # Closed before the frame was read: the composer still holds the text (the page
        # only clears it once the turn is accepted), so nothing is lost.
        assert typed is None or Message.objects.filter(parent=typed).exists()

    own_redis.start()
    wait_until(lambda: healthz(a) == 200 and healthz(b) == 200, timeout=20, what="healthz 200")

    async def after_outage() -> tuple[int, int]:
        async with Tab(a, session) as on_a, Tab(b, session) as on_b:
            answer_id = await on_a.turn("Hello again", model=plain)
            conversation = await asyncio.to_thread(conversation_of, answer_id)
            await on_b.send(action="watch", conversation=str(conversation))
            await on_b.until(lambda f: f'id="message-{answer_id}"' in f)
            # A turn started on A streams live to the socket on B, through Redis.
            await on_a.send(action="send", conversation=str(conversation), text=STORY)
            done = final_other_than(answer_id)
            return answer_id, done(await on_b.until(done, timeout=15))

    recovered, seen_on_b = arun(after_outage())
    assert Message.objects.get(pk=recovered).status == "complete"
    assert Message.objects.get(pk=seen_on_b).status == "complete"
    record(
        "Redis stopped while in use, then started again",
        f"/healthz answered 503 within seconds; a message sent during the outage: "
        f"{seen['send']}; a new socket during the outage: {seen['reconnect']} (the page "
        f"shows “Reconnecting…” and retries); after Redis returned /healthz was 200 on "
        "both processes, a new turn completed and its answer streamed to a socket on the "
        "other process.",
    )


def cut_connections(application_name: str) -> int:
    """Terminate the PostgreSQL sessions of one server, as a database restart would.

    pg_terminate_backend only signals; wait until the sessions are really gone.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
        )
        pids = [row[0] for row in cursor.fetchall()]
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

        def gone() -> bool:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            return cursor.fetchone()[0] == 0

        wait_until(gone, timeout=10, interval=0.02, what="the terminated sessions' exit")
    return len(pids)


def cut_from_a_thread(application_name: str) -> int:
    try:
        return cut_connections(application_name)
    finally:
        connections.close_all()  # this worker thread's own connection


@pytest.fixture
def pg_server(servers, catalogue, make_user):
    """A server whose PostgreSQL sessions carry an application name of their own."""
    user = make_user("ming")
    name = f"chatweb-rel-{free_port()}"
    server = servers(PGAPPNAME=name)
    return server, name, session_id(user), model_pk("sim-chat")


@needs_postgresql
def test_postgresql_connections_cut_and_the_app_goes_on_without_restart(pg_server):
    server, name, session, plain = pg_server
    settled_turn(server, session, plain)
    terminated = cut_connections(name)
    assert terminated >= 1, "the server held no connection to cut"

    health = [healthz(server) for _ in range(4)]
    page = httpx.get(f"{server.url}/", cookies={"sessionid": session}, timeout=10)
    answer = Message.objects.get(pk=arun(_one_turn(server, session, plain)))

    assert health[-1] == 200 and page.status_code == 200
    assert answer.status == "complete" and answer.text
    assert server.process.poll() is None
    record(
        "PostgreSQL connections of a running server terminated",
        f"{terminated} connection(s) cut; /healthz then answered {health}, the next page "
        f"{page.status_code}, the next turn completed; no restart.",
    )


@needs_postgresql
def test_first_request_after_postgresql_cut_succeeds(pg_server):
    server, name, session, plain = pg_server
    settled_turn(server, session, plain)
    assert cut_connections(name) >= 1

    first = healthz(server)
    record(
        "First request after PostgreSQL dropped a server's connections",
        f"/healthz answered {first}"
        + (": the pool handed out a dead connection." if first != 200 else "."),
    )
    assert first == 200


@needs_postgresql
def test_answer_finishing_after_postgresql_cut_is_saved(pg_server):
    """The connections die while the gateway is silent: the answer's final write is the
    first database use after the cut, and the pool's health check (plus one retry of the
    final save) must still get it saved, with the socket alive to show it."""
    server, name, session, _ = pg_server
    silent = model_pk("sim-chat+fault=delay:2")
    settled_turn(server, session, model_pk("sim-chat"))

    async def cut_while_silent() -> int:
        async with Tab(server, session) as tab:
            await tab.send(action="send", conversation="", text="Hello", model=str(silent))
            frame = await tab.until(ANSWER.search)
            answer_id = int(ANSWER.search(frame).group(1))
            assert await asyncio.to_thread(cut_from_a_thread, name) >= 1
            with contextlib.suppress(TimeoutError):
                await tab.until(final_answer, timeout=8)
            return answer_id

    answer = Message.objects.get(pk=arun(cut_while_silent()))
    record(
        "Answer finishing right after PostgreSQL dropped the connections",
        f"8 s after the stream ended the answer was `{answer.status}`"
        + (
            ": its final write met a dead pooled connection, the generation task died "
            "and the page got no final frame (orphan recovery calls it interrupted 30 s later)."
            if answer.status == "streaming"
            else "."
        ),
    )
    assert answer.status == "complete"


async def _one_turn(server, session: str, model: int) -> int:
    async with Tab(server, session) as tab:
        return await tab.turn("Hello", model=model)


def settled_turn(server, session: str, model: int) -> int:
    """One turn, and its conversation's title charged: the server's DB work is done."""
    from conversations.models import UsageRecord

    answer_id = arun(_one_turn(server, session, model))
    conversation = Message.objects.get(pk=answer_id).conversation_id
    wait_until(
        lambda: UsageRecord.objects.filter(conversation_id=conversation, purpose="title").exists(),
        what="the title request",
    )
    return answer_id


# --- 4. The browser's socket dropped mid-stream -------------------------------------------

# Keeps every WebSocket the page opens, so the test can drop the live one as a network
# failure would, without the htmx extension knowing.
KEEP_SOCKETS_JS = """
(() => {
  const Original = window.WebSocket;
  window.__rawSockets = [];
  window.WebSocket = function (...args) {
    const socket = new Original(...args);
    window.__rawSockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, {
    CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3,
  });
})();
"""


@pytest.fixture
def chromium_page(servers, make_user, monkeypatch):
    if not CHROMIUM:
        pytest.skip("no Chromium on PATH (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    make_user("ming")
    ModelChoice.objects.create(upstream_id=SLOW, label="Sim Chat (slow)", is_default=True)
    server = servers()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        context.add_init_script(KEEP_SOCKETS_JS)
        context.add_init_script(RECORDER_JS)
        page = context.new_page()
        sign_in(page, server.url, "ming", PASSWORD)
        yield page
        # The test body's ORM calls ran beside Playwright's event loop, on a connection
        # of their own: close it, or the test database cannot be dropped at the end.
        connections.close_all()
        context.close()
        browser.close()


@pytest.mark.browser
def test_socket_dropped_mid_stream_resumes_without_gap_or_duplicate(chromium_page):
    page = chromium_page
    send_message(page, STORY)
    answer = latest_answer_id(page)
    wait_for_live_text(page, answer, longer_than=10)

    page.evaluate("window.__rawSockets.at(-1).close(3000, 'dropped by the test')")
    page.locator("#connection").wait_for(state="visible", timeout=5_000)
    page.wait_for_function("() => window.__socketOpens >= 2")
    wait_for_socket(page)
    wait_for_status(page, answer, "complete")

    saved = Message.objects.get(pk=answer)
    assert saved.status == "complete"
    final = rendered_text(page, saved.text)
    assert body_text(page, answer) == final == folded(STORY_ANSWER)
    assert page.locator("#connection").is_hidden()
    resumed = [state for state in streaming_states(page, answer) if state.socket_opens >= 2]
    for state in streaming_states(page, answer):
        assert final.startswith(folded(state.blocks or "")), f"a gap: {state}"
        assert not repeated_lines(f"{state.blocks}\n{state.tail}", saved.text), state
    assert page.locator(f"article#message-{answer}").count() == 1
    assert page.locator("article.message-user").count() == 1
    record(
        "Browser socket dropped mid-stream",
        f"the page showed “Reconnecting…”, reconnected, resumed from a snapshot "
        f"({len(resumed)} live states after reconnecting) and ended with exactly the "
        "saved answer: no gap, no duplicate.",
    )


# --- 6. Load, small: many users through two processes on PostgreSQL + Redis ---------------


@needs_postgresql
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (scale-out)")
def test_small_load_through_two_processes_loses_nothing(servers, catalogue, make_user):
    from bench import loadtest

    redis_url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"].rstrip("/")) + "/12"
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    pair = [servers(REDIS_URL=redis_url), servers(REDIS_URL=redis_url)]
    accounts = [make_user(f"load{index:03d}") for index in range(20)]
    users = [
        loadtest.User(index, session_id(account), pair[index % 2].url)
        for index, account in enumerate(accounts)
    ]

    arun(loadtest.drive(users, messages=2, model=model_pk("sim-chat"), budget=40))
    checks = loadtest.verify(users, {index: account.pk for index, account in enumerate(accounts)})

    (ARTIFACTS / "loadtest-ci.json").write_text(json.dumps(checks, indent=2, default=str))
    assert loadtest.passed(checks), json.dumps(checks, default=str)
    record(
        "Load, CI size: 20 users x 2 messages through two processes (PostgreSQL + Redis)",
        f"{checks['answers_complete']}/{checks['messages_sent']} answers complete and equal "
        "to the simulator's reply and to the client's last frame; no lost message; usage "
        "records equal to the answers' reported tokens; every quota counter settled.",
    )
